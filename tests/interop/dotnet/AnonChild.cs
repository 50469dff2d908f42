// The child side of an anonymous pipe, written against .NET's API: an npipe parent starts it with
// the client handle string on the command line.
//   AnonChild.exe in HANDLE    copy the pipe to stdout (the child of `npipe anon send`)
//   AnonChild.exe out HANDLE   copy stdin to the pipe (the child of `npipe anon recv`)
// Exits 0 on success, 1 with the exception on stderr otherwise, 2 on bad usage.
using System;
using System.IO;
using System.IO.Pipes;

static class AnonChild
{
    static int Main(string[] args)
    {
        if (args.Length != 2 || (args[0] != "in" && args[0] != "out"))
        {
            Console.Error.WriteLine("usage: AnonChild.exe in|out HANDLE");
            return 2;
        }
        try
        {
            if (args[0] == "in")
            {
                using (var pipe = new AnonymousPipeClientStream(PipeDirection.In, args[1]))
                using (var stdout = Console.OpenStandardOutput())
                {
                    if (!pipe.CanRead || pipe.CanWrite)
                        throw new InvalidOperationException("an In client must only read");
                    pipe.CopyTo(stdout, 1 << 16);
                }
            }
            else
            {
                using (var pipe = new AnonymousPipeClientStream(PipeDirection.Out, args[1]))
                using (var stdin = Console.OpenStandardInput())
                {
                    if (pipe.CanRead || !pipe.CanWrite)
                        throw new InvalidOperationException("an Out client must only write");
                    stdin.CopyTo(pipe, 1 << 16);
                }
            }
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("AnonChild: " + e.GetType().Name + ": " + e.Message);
            return 1;
        }
    }
}
