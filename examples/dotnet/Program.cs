// Both sides of the seed article's exchange in C#, for npipe's C++ examples on the other end:
//   server: wait for a client, send 1, print the byte it answers (example_seed_client answers 2)
//   client: connect, print the server's byte, answer 2 (example_seed_server prints it)
// The pipe name maps to $TMPDIR/CoreFxPipe_test-pipe (/tmp/ without TMPDIR) on both sides.
using System;
using System.IO.Pipes;

static class Program
{
    static int Main(string[] args)
    {
        if (args.Length == 1 && args[0] == "server")
        {
            using (var server = new NamedPipeServerStream("test-pipe"))
            {
                server.WaitForConnection();
                server.WriteByte(1);
                Console.WriteLine(server.ReadByte());
            }
            return 0;
        }
        if (args.Length == 1 && args[0] == "client")
        {
            using (var client = new NamedPipeClientStream(".", "test-pipe"))
            {
                client.Connect(5000);  // TimeoutException after 5 s without a server
                Console.WriteLine(client.ReadByte());
                client.WriteByte(2);
            }
            return 0;
        }
        Console.Error.WriteLine("usage: SeedPipe server|client");
        return 2;
    }
}
