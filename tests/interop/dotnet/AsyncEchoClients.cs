// Many concurrent .NET clients written the .NET way (ConnectAsync, WriteAsync, ReadAsync, all
// awaited together), for npipe's asynchronous server tests.
//
//   AsyncEchoClients.exe NAME COUNT SIZE
//
// Starts COUNT clients of the pipe NAME at once. Client i connects (waiting up to 20 s for the
// server), writes pattern(SIZE, i + 1) while reading SIZE bytes back, and compares them; then it
// closes. Prints "ok COUNT" when every client got its own bytes back, else "failed i: WHY" for
// the first failure (exit 1). pattern() is the xorshift32 stream of tests/support.
using System;
using System.IO.Pipes;
using System.Threading.Tasks;

class AsyncEchoClients
{
    static byte[] Pattern(int size, uint seed)
    {
        var data = new byte[size];
        uint x = seed != 0 ? seed : 1;
        for (int i = 0; i < size; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data[i] = (byte)x;
        }
        return data;
    }

    static async Task<string> Client(string name, int index, int size)
    {
        var payload = Pattern(size, (uint)(index + 1));
        using (var pipe = new NamedPipeClientStream(".", name, PipeDirection.InOut,
                                                    PipeOptions.Asynchronous))
        {
            await pipe.ConnectAsync(20000);
            // Write and read at once: an echo server sends back while we still write.
            Task write = pipe.WriteAsync(payload, 0, size);
            var back = new byte[size];
            int got = 0;
            while (got < size)
            {
                int n = await pipe.ReadAsync(back, got, size - got);
                if (n == 0)
                    return "end of stream after " + got + " bytes";
                got += n;
            }
            await write;
            for (int i = 0; i < size; i++)
                if (back[i] != payload[i])
                    return "mismatch at byte " + i;
        }
        return null;
    }

    static int Main(string[] args)
    {
        int code = Run(args);
        // Mono 6.8's shutdown can hang with thread pool workers alive, the work done and
        // printed (BulkPeer.cs says more): on Mono, end without it.
        if (Type.GetType("Mono.Runtime") != null)
        {
            Console.Out.Flush();
            _exit(code);
        }
        return code;
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern void _exit(int status);

    static int Run(string[] args)
    {
        string name = args[0];
        int count = int.Parse(args[1]), size = int.Parse(args[2]);
        var clients = new Task<string>[count];
        for (int i = 0; i < count; i++)
            clients[i] = Client(name, i, size);
        try
        {
            Task.WaitAll(clients);
        }
        catch (AggregateException e)
        {
            Console.Out.WriteLine("failed: " + e.InnerException.GetType().Name + ": " +
                                  e.InnerException.Message);
            return 1;
        }
        for (int i = 0; i < count; i++)
        {
            if (clients[i].Result != null)
            {
                Console.Out.WriteLine("failed " + i + ": " + clients[i].Result);
                return 1;
            }
        }
        Console.Out.WriteLine("ok " + count);
        return 0;
    }
}
