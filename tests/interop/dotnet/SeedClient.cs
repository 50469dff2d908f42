// The seed article's client, unmodified apart from the Main that calls it.
using System;
using System.IO.Pipes;

class SeedClient
{
    static void Main(string[] args)
    {
        ReceiveByteAndRespond();
    }

    private static void ReceiveByteAndRespond()
    {
        using (NamedPipeClientStream namedPipeClient = new NamedPipeClientStream("test-pipe"))
        {
            namedPipeClient.Connect();
            Console.WriteLine(namedPipeClient.ReadByte());
            namedPipeClient.WriteByte(2);
        }
    }
}
