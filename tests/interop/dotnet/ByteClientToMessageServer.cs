// A .NET byte-mode client (the only kind .NET has on Linux) connecting to a pipe name. Used
// against an npipe message-mode server, which listens on SOCK_SEQPACKET: the connect must fail
// at once and cleanly. Prints "connected" or "refused: <exception type> <socket error>" and
// the seconds the attempt took; exits 0 when refused, 2 when connected.
using System;
using System.Diagnostics;
using System.IO.Pipes;
using System.Net.Sockets;

class ByteClientToMessageServer
{
    static int Main(string[] args)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            using (var client = new NamedPipeClientStream(".", args[0], PipeDirection.InOut))
            {
                client.Connect(int.Parse(args[1]));
                Console.WriteLine("connected");
                return 2;
            }
        }
        catch (SocketException e)
        {
            Console.WriteLine("refused: " + e.GetType().FullName + " " + e.SocketErrorCode +
                              " after " + watch.Elapsed.TotalSeconds.ToString("F1") + " s");
            return 0;
        }
        catch (Exception e)
        {
            Console.WriteLine("refused: " + e.GetType().FullName + " " + e.Message + " after " +
                              watch.Elapsed.TotalSeconds.ToString("F1") + " s");
            return 0;
        }
    }
}
