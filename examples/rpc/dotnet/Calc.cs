// The C# side of examples/rpc, on StreamJsonRpc over System.IO.Pipes (nothing from npipe):
//   dotnet run -- server NAME   serves add/divide to one client (example_rpc_calc_client)
//   dotnet run -- client NAME   calls example_rpc_calc_server
using System;
using System.IO.Pipes;
using System.Threading.Tasks;
using StreamJsonRpc;

public class Calculator {
    [JsonRpcMethod("add")]
    public int Add(int a, int b) => a + b;

    [JsonRpcMethod("divide")]
    public double Divide(double a, double b) {
        if (b == 0)
            throw new LocalRpcException("division by zero") { ErrorCode = 1001, ErrorData = new { dividend = a } };
        return a / b;
    }
}

public static class CalcExample {
    public static async Task<int> Main(string[] args) {
        if (args.Length != 2) {
            Console.Error.WriteLine("usage: Calc server|client NAME");
            return 2;
        }
        if (args[0] == "server") {
            using var server = new NamedPipeServerStream(args[1], PipeDirection.InOut, 1,
                                                         PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
            Console.WriteLine("listening");
            await server.WaitForConnectionAsync();
            using var rpc = JsonRpc.Attach(server, new Calculator());
            await rpc.Completion;
            return 0;
        }
        using var pipe = new NamedPipeClientStream(".", args[1], PipeDirection.InOut, PipeOptions.Asynchronous);
        await pipe.ConnectAsync(30000);
        using var client = JsonRpc.Attach(pipe);
        Console.WriteLine("2 + 3 = " + await client.InvokeAsync<int>("add", 2, 3));
        try {
            await client.InvokeWithParameterObjectAsync<double>("divide", new { a = 1, b = 0 });
        } catch (RemoteInvocationException e) {
            Console.WriteLine("error " + e.ErrorCode + ": " + e.Message);
        }
        return 0;
    }
}
