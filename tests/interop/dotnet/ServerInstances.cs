// A .NET server with maxNumberOfServerInstances N, for npipe clients to crowd:
//
//   ServerInstances.exe NAME N TOTAL
//
// Creates N NamedPipeServerStream instances of NAME (maxNumberOfServerInstances N), then tries
// an N+1st and prints "extra: TYPE" (the exception) or "extra: created". Each instance, on its
// own thread, waits for a client, echoes it to end of stream, disconnects and waits again,
// until TOTAL clients were served; prints "served TOTAL" and exits 0 (3 and "error TYPE" on any
// other exception).
using System;
using System.IO.Pipes;
using System.Threading;

class ServerInstances
{
    static int Main(string[] args)
    {
        string name = args[0];
        int n = int.Parse(args[1]), total = int.Parse(args[2]);
        var servers = new NamedPipeServerStream[n];
        for (int i = 0; i < n; i++)
            servers[i] = new NamedPipeServerStream(name, PipeDirection.InOut, n);
        try
        {
            new NamedPipeServerStream(name, PipeDirection.InOut, n).Dispose();
            Console.WriteLine("extra: created");
        }
        catch (Exception e)
        {
            Console.WriteLine("extra: " + e.GetType().Name);
        }
        Console.Out.Flush();
        int served = 0;
        Exception failure = null;
        var threads = new Thread[n];
        for (int i = 0; i < n; i++)
        {
            var server = servers[i];
            threads[i] = new Thread(() => {
                try
                {
                    var buffer = new byte[4096];
                    while (Interlocked.Increment(ref served) <= total)
                    {
                        server.WaitForConnection();
                        int got;
                        while ((got = server.Read(buffer, 0, buffer.Length)) > 0)
                            server.Write(buffer, 0, got);
                        server.Disconnect();
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            threads[i].Start();
        }
        foreach (var t in threads)
            t.Join();
        foreach (var s in servers)
            s.Dispose();
        if (failure != null)
        {
            Console.WriteLine("error " + failure.GetType().Name);
            Console.Error.WriteLine(failure);
            return 3;
        }
        Console.WriteLine("served " + total);
        return 0;
    }
}
