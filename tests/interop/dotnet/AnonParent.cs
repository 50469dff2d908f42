// The parent side of an anonymous pipe, written against .NET's API: an
// AnonymousPipeServerStream(Out) whose client handle goes to a child started with Process.Start.
//
//   AnonParent.exe SIZE SEED PROGRAM ARGS...    ("{}" in ARGS becomes the handle string;
//                                               ARGS without spaces)
//
// Writes pattern(SIZE, SEED) into the pipe, closes it, waits for the child and exits with its
// exit code. The child inherits this process's stdout. Reports go to stderr only.
using System;
using System.Diagnostics;
using System.IO;
using System.IO.Pipes;

static class AnonParent
{
    static int Main(string[] args)
    {
        long size = long.Parse(args[0]);
        uint x = uint.Parse(args[1]);
        if (x == 0)
            x = 1;
        using (var pipe = new AnonymousPipeServerStream(PipeDirection.Out, HandleInheritability.Inheritable))
        {
            // Arguments as one string (Mono ignores ArgumentList); the tests pass no spaces.
            var rest = new string[args.Length - 3];
            for (int i = 3; i < args.Length; i++)
                rest[i - 3] = args[i] == "{}" ? pipe.GetClientHandleAsString() : args[i];
            var start = new ProcessStartInfo(args[2], string.Join(" ", rest)) { UseShellExecute = false };
            using (var child = Process.Start(start))
            {
                pipe.DisposeLocalCopyOfClientHandle();
                var buffer = new byte[65536];
                try
                {
                    for (long done = 0; done < size;)
                    {
                        int n = (int)Math.Min(buffer.Length, size - done);
                        for (int i = 0; i < n; i++)
                        {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            buffer[i] = (byte)x;
                        }
                        pipe.Write(buffer, 0, n);
                        done += n;
                    }
                    pipe.Dispose();
                }
                catch (IOException e)
                {
                    Console.Error.WriteLine("AnonParent: write: " + e.Message);
                }
                child.WaitForExit();
                Console.Error.WriteLine("AnonParent: child exit " + child.ExitCode);
                return child.ExitCode;
            }
        }
    }
}
