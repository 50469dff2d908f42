// A configurable .NET peer for npipe's interop tests: a NamedPipeServerStream or
// NamedPipeClientStream that sends a pattern, receives and reports, echoes, or reads byte by byte.
//
//   BulkPeer.exe server|client NAME MODE [MODE ARGS] [--direction in|out|inout]
//                [--current-user-only] [--first-instance] [--instances N] [--timeout MS]
//                [--async] [--cancel-after MS]
//   BulkPeer.exe temppath                      prints Path.GetTempPath()
//
// --first-instance: PipeOptions.FirstPipeInstance (.NET 8+; Mono has no such value).
// --async: the client connects with ConnectAsync(timeout); --cancel-after MS: with
// ConnectAsync(CancellationToken) cancelled after MS (and no timeout).
//
// Modes (what is printed on stdout, one line each):
//   send SIZE SEED       writes pattern(SIZE, SEED), closes               -> "sent SIZE"
//   recv                 reads to end of stream                           -> "received LEN HASH"
//   echo                 writes back everything it reads, to end of stream -> "echoed LEN"
//   roundtrip SIZE SEED  writes pattern(SIZE, SEED) while reading SIZE bytes back and comparing
//                        -> "roundtrip ok SIZE", or "roundtrip mismatch at N" / "roundtrip short N"
//   bytes                ReadByte until -1, printing each value, then one Read -> "read N"
//   hangup               connects and closes at once                      -> "closed"
// pattern() is the xorshift32 stream of tests/support/test_support.cpp; HASH is FNV-1a 64 in
// 16 lower-case hex digits. Any exception prints "error TYPE" on stdout (the message on stderr)
// and exits 3, so a test can assert what .NET threw.
using System;
using System.IO;
using System.IO.Pipes;
using System.Threading;

class BulkPeer
{
    const int Chunk = 64 * 1024;

    class Pattern
    {
        uint x;
        public Pattern(uint seed) { x = seed != 0 ? seed : 1; }
        public void Fill(byte[] buffer, int count)
        {
            for (int i = 0; i < count; i++)
            {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buffer[i] = (byte)x;
            }
        }
    }

    class Fnv
    {
        public ulong Hash = 14695981039346656037UL;
        public void Add(byte[] buffer, int count)
        {
            ulong h = Hash;
            for (int i = 0; i < count; i++)
            {
                h ^= buffer[i];
                h *= 1099511628211UL;
            }
            Hash = h;
        }
    }

    static void Say(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }

    static void Send(Stream pipe, long size, uint seed)
    {
        var pattern = new Pattern(seed);
        var buffer = new byte[Chunk];
        for (long done = 0; done < size;)
        {
            int n = (int)Math.Min(Chunk, size - done);
            pattern.Fill(buffer, n);
            pipe.Write(buffer, 0, n);
            done += n;
        }
    }

    static int Main(string[] args)
    {
        int code;
        try
        {
            code = Run(args);
        }
        catch (Exception e)
        {
            Say("error " + e.GetType().Name);
            Console.Error.WriteLine(e.ToString());
            code = 3;
        }
        if (usedThreadPool && Type.GetType("Mono.Runtime") != null)
        {
            // Mono 6.8's shutdown suspends every thread, and with a thread pool worker alive
            // (ConnectAsync runs on one) it hangs now and then, the work done and printed
            // (seen about twice in 400 runs under load; mono/mono#17317). Everything is
            // flushed and disposed by now: end the process without that shutdown.
            Console.Out.Flush();
            Console.Error.Flush();
            _exit(code);
        }
        return code;
    }

    static bool usedThreadPool;

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern void _exit(int status);

    // PipeOptions.FirstPipeInstance, spelt as a number: Mono's PipeOptions lacks it.
    const PipeOptions FirstPipeInstance = (PipeOptions)0x00080000;

    static int Run(string[] args)
    {
        if (args[0] == "temppath")
        {
            Say(Path.GetTempPath());
            return 0;
        }
        string role = args[0], name = args[1], mode = args[2];
        var positional = new System.Collections.Generic.List<string>();
        var direction = PipeDirection.InOut;
        var options = PipeOptions.None;
        int instances = 1, timeout = 30000, cancelAfter = -1;
        bool connectAsync = false;
        for (int i = 3; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--direction":
                    string d = args[++i];
                    direction = d == "in" ? PipeDirection.In
                              : d == "out" ? PipeDirection.Out : PipeDirection.InOut;
                    break;
                case "--current-user-only": options |= PipeOptions.CurrentUserOnly; break;
                case "--first-instance": options |= FirstPipeInstance; break;
                case "--async": connectAsync = true; break;
                case "--cancel-after": cancelAfter = int.Parse(args[++i]); break;
                case "--instances": instances = int.Parse(args[++i]); break;
                case "--timeout": timeout = int.Parse(args[++i]); break;
                default: positional.Add(args[i]); break;
            }
        }

        PipeStream pipe;
        if (role == "server")
        {
            var server = new NamedPipeServerStream(name, direction, instances,
                                                   PipeTransmissionMode.Byte, options);
            server.WaitForConnection();
            pipe = server;
        }
        else
        {
            var client = new NamedPipeClientStream(".", name, direction, options);
            usedThreadPool = cancelAfter >= 0 || connectAsync;
            if (cancelAfter >= 0)
            {
                using (var cancel = new CancellationTokenSource(cancelAfter))
                    client.ConnectAsync(cancel.Token).GetAwaiter().GetResult();
            }
            else if (connectAsync)
            {
                client.ConnectAsync(timeout).GetAwaiter().GetResult();
            }
            else
            {
                client.Connect(timeout);
            }
            pipe = client;
        }

        using (pipe)
        {
            var buffer = new byte[Chunk];
            switch (mode)
            {
                case "send":
                {
                    long size = long.Parse(positional[0]);
                    Send(pipe, size, uint.Parse(positional[1]));
                    Say("sent " + size);
                    break;
                }
                case "recv":
                {
                    var fnv = new Fnv();
                    long total = 0;
                    int n;
                    while ((n = pipe.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        fnv.Add(buffer, n);
                        total += n;
                    }
                    Say("received " + total + " " + fnv.Hash.ToString("x16"));
                    break;
                }
                case "echo":
                {
                    long total = 0;
                    int n;
                    while ((n = pipe.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        pipe.Write(buffer, 0, n);
                        total += n;
                    }
                    Say("echoed " + total);
                    break;
                }
                case "roundtrip":
                {
                    long size = long.Parse(positional[0]);
                    uint seed = uint.Parse(positional[1]);
                    Exception sendError = null;
                    // Send on another thread: the echoing peer's buffers would fill up and
                    // deadlock a sender that does not read at the same time.
                    var sender = new Thread(() => {
                        try { Send(pipe, size, seed); }
                        catch (Exception e) { sendError = e; }
                    });
                    sender.Start();
                    var expected = new Pattern(seed);
                    var want = new byte[Chunk];
                    long got = 0;
                    string verdict = null;
                    while (got < size && verdict == null)
                    {
                        int n = pipe.Read(buffer, 0, (int)Math.Min(Chunk, size - got));
                        if (n == 0)
                        {
                            verdict = "roundtrip short " + got;
                            break;
                        }
                        expected.Fill(want, n);
                        for (int i = 0; i < n; i++)
                            if (buffer[i] != want[i])
                            {
                                verdict = "roundtrip mismatch at " + (got + i);
                                break;
                            }
                        got += n;
                    }
                    sender.Join();
                    if (sendError != null)
                        throw sendError;
                    Say(verdict ?? "roundtrip ok " + got);
                    break;
                }
                case "bytes":
                {
                    int b;
                    while ((b = pipe.ReadByte()) != -1)
                        Say(b.ToString());
                    Say("-1");
                    Say("read " + pipe.Read(buffer, 0, buffer.Length));
                    break;
                }
                case "hangup":
                    Say("closed");
                    break;
                default:
                    throw new ArgumentException("unknown mode " + mode);
            }
        }
        return 0;
    }
}
