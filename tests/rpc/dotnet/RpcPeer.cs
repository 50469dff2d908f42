// StreamJsonRpc peer for tests/rpc/rpc_peer_test.cpp. Usage:
//   dotnet RpcPeers.dll server|client PIPE_NAME header|length
//   dotnet RpcPeers.dll example server|client PIPE_NAME   (examples/rpc/dotnet/Calc.cs)
// server: waits for one client on NamedPipeServerStream PIPE_NAME and serves Target's methods
//         (named as the C++ test calls them) until the client leaves.
// client: connects with NamedPipeClientStream and runs its checks against the C++ server,
//         printing "ok: ..." per check; exit code 0 when all pass.
using System;
using System.IO;
using System.IO.Pipes;
using System.Threading;
using System.Threading.Tasks;
using StreamJsonRpc;

public class Target {
    readonly TaskCompletionSource<bool> cancelled =
        new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
    public JsonRpc Rpc;

    [JsonRpcMethod("add")]
    public int Add(int a, int b) => a + b;

    [JsonRpcMethod("fail")]
    public void Fail() {
        throw new LocalRpcException("it failed") { ErrorCode = 4711, ErrorData = new { detail = "why" } };
    }

    // Waits until the caller cancels (then remembers it) or 60 s pass.
    [JsonRpcMethod("slow")]
    public async Task<int> Slow(CancellationToken token) {
        // Tells the caller it runs, so its cancel comes while the method waits.
        await Rpc.NotifyAsync("entered");
        try {
            await Task.Delay(TimeSpan.FromSeconds(60), token);
            return 0;
        } catch (OperationCanceledException) {
            cancelled.TrySetResult(true);
            throw;
        }
    }

    [JsonRpcMethod("was_cancelled")]
    public async Task<bool> WasCancelled() {
        var done = await Task.WhenAny(cancelled.Task, Task.Delay(TimeSpan.FromSeconds(30)));
        return done == cancelled.Task;
    }

    // Calls the C++ end back while its call is in progress.
    [JsonRpcMethod("ask_back")]
    public async Task<int> AskBack(int x) => await Rpc.InvokeAsync<int>("twice", x) + 1;
}

public static class RpcPeer {
    static IJsonRpcMessageHandler Handler(Stream s, string framing) {
        if (framing == "length") return new LengthHeaderMessageHandler(s, s, new JsonMessageFormatter());
        return new HeaderDelimitedMessageHandler(s, s);
    }

    static void Check(bool ok, string what) {
        if (!ok) throw new Exception("check failed: " + what);
        Console.WriteLine("ok: " + what);
    }

    public static async Task<int> Main(string[] args) {
        if (args[0] == "example") return await CalcExample.Main(new[] { args[1], args[2] });
        string mode = args[0], name = args[1], framing = args[2];
        if (mode == "server") {
            using var pipe = new NamedPipeServerStream(name, PipeDirection.InOut, 1,
                                                       PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
            Console.WriteLine("listening");
            await pipe.WaitForConnectionAsync();
            var target = new Target();
            using var rpc = new JsonRpc(Handler(pipe, framing));
            target.Rpc = rpc;
            rpc.AddLocalRpcTarget(target);
            rpc.StartListening();
            await rpc.Completion;
            return 0;
        }
        using var client = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
        await client.ConnectAsync(30000);
        var entered = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var jsonRpc = new JsonRpc(Handler(client, framing));
        jsonRpc.AddLocalRpcMethod("entered", new Action(() => entered.TrySetResult(true)));
        jsonRpc.AddLocalRpcMethod("twice", new Func<int, int>(x => 2 * x));
        jsonRpc.StartListening();
        Check(await jsonRpc.InvokeAsync<int>("add", 2, 3) == 5, "add by position");
        Check(await jsonRpc.InvokeWithParameterObjectAsync<int>("add", new { a = 4, b = 5 }) == 9,
              "add by name");
        Check(await jsonRpc.InvokeAsync<int>("ask_back", 20) == 41, "callback during a call");
        try {
            await jsonRpc.InvokeAsync("fail");
            Check(false, "fail throws");
        } catch (RemoteInvocationException e) {
            Check(e.ErrorCode == 4711 && e.Message == "it failed" && e.ErrorData != null &&
                  e.ErrorData.ToString().Contains("why"), "error with data");
        }
        try {
            await jsonRpc.InvokeAsync("no_such_method");
            Check(false, "unknown method throws");
        } catch (RemoteMethodNotFoundException) {
            Check(true, "method not found");
        }
        using (var cts = new CancellationTokenSource()) {
            var call = jsonRpc.InvokeWithCancellationAsync<int>("wait_cancel", null, cts.Token);
            await entered.Task;
            cts.Cancel();
            try {
                await call;
                Check(false, "cancelled call throws");
            } catch (OperationCanceledException) {
                Check(true, "cancellation from .NET");
            }
        }
        Check(await jsonRpc.InvokeAsync<bool>("was_cancelled"), "the C++ handler saw the cancel");
        return 0;
    }
}
