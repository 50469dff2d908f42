// The seed article's server, unmodified apart from the Main that calls it.
using System;
using System.IO.Pipes;

class SeedServer
{
    static void Main(string[] args)
    {
        SendByteAndReceiveResponse();
    }

    private static void SendByteAndReceiveResponse()
    {
        using (NamedPipeServerStream namedPipeServer = new NamedPipeServerStream("test-pipe"))
        {
            namedPipeServer.WaitForConnection();
            namedPipeServer.WriteByte(1);
            int byteFromClient = namedPipeServer.ReadByte();
            Console.WriteLine(byteFromClient);
        }
    }
}
