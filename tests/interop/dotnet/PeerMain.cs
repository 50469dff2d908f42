// The entry point of Peers.dll (the .NET 10 build of every peer in this folder): the first
// argument names the program, the rest are its arguments, as `mono PROGRAM.exe ARGS...` gets
// them. Not compiled by mcs: Mono runs each program's own .exe.
using System;
using System.Reflection;
using System.Runtime.ExceptionServices;

static class PeerMain
{
    static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: dotnet Peers.dll PROGRAM [ARGS...]");
            return 2;
        }
        var type = typeof(PeerMain).Assembly.GetType(args[0]);
        var main = type?.GetMethod("Main", BindingFlags.Static | BindingFlags.Public |
                                               BindingFlags.NonPublic);
        if (main == null)
        {
            Console.Error.WriteLine("PeerMain: no program " + args[0]);
            return 2;
        }
        var rest = new string[args.Length - 1];
        Array.Copy(args, 1, rest, 0, rest.Length);
        try
        {
            return main.Invoke(null, new object[] { rest }) is int code ? code : 0;
        }
        catch (TargetInvocationException e)
        {
            // Unhandled in the program: let it end the process as it would on its own.
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
