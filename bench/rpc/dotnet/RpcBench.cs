// The JSON-RPC benchmark's StreamJsonRpc end (bench/run.sh's "rpc" rows): StreamJsonRpc over
// NamedPipeServerStream / NamedPipeClientStream with its default framing (JsonRpc.Attach:
// HeaderDelimitedMessageHandler), the same command line as bench/rpc/rpc_bench.cpp:
//   dotnet RpcBench.dll server NAME               serves `add` [a, b] -> a + b to every client
//                                                 (prints "listening"; until killed)
//   dotnet RpcBench.dll client NAME CLIENTS CALLS CLIENTS connections at once, CALLS calls in all
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO.Pipes;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading.Tasks;
using StreamJsonRpc;

public class Calc {
    [JsonRpcMethod("add")]
    public int Add(int a, int b) => a + b;
}

public static class RpcBench {
    static async Task Serve(string name) {
        bool announced = false;
        NamedPipeServerStream waiting = null;
        // SIGTERM disposes the instance waiting for a client, which removes the socket.
        using var stop = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => {
            waiting?.Dispose();
            Environment.Exit(0);
        });
        for (;;) {
            var pipe = waiting = new NamedPipeServerStream(
                name, PipeDirection.InOut, NamedPipeServerStream.MaxAllowedServerInstances,
                PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
            if (!announced) {
                Console.WriteLine("listening");
                announced = true;
            }
            await pipe.WaitForConnectionAsync();
            var rpc = JsonRpc.Attach(pipe, new Calc());
            _ = rpc.Completion.ContinueWith(_ => pipe.Dispose());
        }
    }

    static double Percentile(List<double> sorted, double p) {
        int rank = (int)Math.Ceiling(p / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank, 1, sorted.Count) - 1];
    }

    static async Task<int> Clients(string name, int clients, long calls) {
        var ready = new List<Task<(JsonRpc, NamedPipeClientStream)>>();
        for (int slot = 0; slot < clients; ++slot) {
            long share = calls / clients + (slot < calls % clients ? 1 : 0);
            ready.Add(Task.Run(async () => {
                var pipe = new NamedPipeClientStream(".", name, PipeDirection.InOut, PipeOptions.Asynchronous);
                await pipe.ConnectAsync(30000);
                var rpc = JsonRpc.Attach(pipe);
                for (long i = 0, warm = Math.Max(100, share / 5); i < warm; ++i)
                    await rpc.InvokeAsync<int>("add", 1, 2);
                return (rpc, pipe);
            }));
        }
        var conns = await Task.WhenAll(ready);  // every client connected and warmed up
        var samples = new List<double>[clients];
        double tick = 1e6 / Stopwatch.Frequency;
        var start = Stopwatch.GetTimestamp();
        var runs = new List<Task>();
        for (int slot = 0; slot < clients; ++slot) {
            long share = calls / clients + (slot < calls % clients ? 1 : 0);
            var mine = samples[slot] = new List<double>((int)share);
            var rpc = conns[slot].Item1;
            runs.Add(Task.Run(async () => {
                for (long i = 0; i < share; ++i) {
                    long t0 = Stopwatch.GetTimestamp();
                    int r = await rpc.InvokeAsync<int>("add", 1, 2);
                    long t1 = Stopwatch.GetTimestamp();
                    if (r != 3) throw new Exception("add [1,2] returned " + r);
                    mine.Add((t1 - t0) * tick);
                }
            }));
        }
        await Task.WhenAll(runs);
        double secs = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        foreach (var (rpc, pipe) in conns) {
            rpc.Dispose();
            pipe.Dispose();
        }
        var all = samples.SelectMany(s => s).OrderBy(v => v).ToList();
        double rate = all.Count / secs;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv,
            "{{\"system\":\"streamjsonrpc\",\"test\":\"rpc\",\"clients\":{0},\"count\":{1}," +
            "\"calls_per_s\":{2:F1},\"rounds\":[{2:F1}],\"median_us\":{3:F3},\"p99_us\":{4:F3}}}",
            clients, all.Count, rate, Percentile(all, 50), Percentile(all, 99)));
        return 0;
    }

    public static async Task<int> Main(string[] args) {
        if (args.Length == 2 && args[0] == "server") {
            await Serve(args[1]);
            return 0;
        }
        if (args.Length == 4 && args[0] == "client")
            return await Clients(args[1], int.Parse(args[2]), long.Parse(args[3]));
        Console.Error.WriteLine("usage: RpcBench server NAME | RpcBench client NAME CLIENTS CALLS");
        return 2;
    }
}
