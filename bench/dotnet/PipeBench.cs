// .NET's own named pipes (System.IO.Pipes on Mono and on .NET 10: AF_UNIX sockets at
// /tmp/CoreFxPipe_<name>), measured with the same four tests, schedule and output as
// bench/common/harness.cpp, which this mirrors (it cannot share C++ code).
// Mono: mcs -optimize+ -r:System.Core PipeBench.cs; .NET 10: dotnet build -c Release
// PipeBench.csproj (offline: nuget.config has no package source).
//
//   mono PipeBench.exe TEST [--size BYTES] [--count N] [--rounds N] [--buffer-size BYTES]
//                           [--cpu-server N] [--cpu-client N] [--json]
//   dotnet PipeBench.dll TEST ...
//
// The client (this process) starts the server as a second process of the same runtime
// (--serve NAME), waits for it to report "ready", runs the test and prints the figures. The
// JSON's "system" is "mono" or "dotnet10" (the runtime's major version).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.Pipes;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

static class PipeBench
{
    enum Test { Latency, Throughput, Messages, Connect }

    class Config
    {
        public Test Test;
        public long Size, Count, BufferSize;
        public int Rounds = 5, CpuServer = -1, CpuClient = -1, Clients = 1;
        public bool Json;
        public string Serve;  // server role: the pipe name
        public List<string> Raw = new List<string>();
    }

    // "libc.so.6": .NET looks for exactly the file named (Debian's libc.so is a linker script);
    // Mono maps the name as well.
    [DllImport("libc.so.6", SetLastError = true)]
    static extern int sched_setaffinity(int pid, IntPtr cpusetsize, ref ulong mask);

    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    static int Main(string[] args)
    {
        try
        {
            var cfg = Parse(args);
            ApplyDefaults(cfg);
            if (cfg.Serve != null)
            {
                Serve(cfg);
                return 0;
            }
            return RunClient(cfg);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("PipeBench: " + e.Message);
            return 1;
        }
    }

    static long ParseSize(string s)
    {
        string t = s.Trim().ToLowerInvariant();
        long mult = 1;
        foreach (var unit in new[] { "kib", "kb", "k", "mib", "mb", "m", "gib", "gb", "g", "b" })
        {
            if (t.EndsWith(unit))
            {
                mult = unit[0] == 'k' ? 1L << 10 : unit[0] == 'm' ? 1L << 20 : unit[0] == 'g' ? 1L << 30 : 1;
                t = t.Substring(0, t.Length - unit.Length);
                break;
            }
        }
        return long.Parse(t, Inv) * mult;
    }

    static Config Parse(string[] args)
    {
        var cfg = new Config();
        bool haveTest = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--json") { cfg.Json = true; cfg.Raw.Add(a); continue; }
            if (a.StartsWith("--"))
            {
                if (i + 1 >= args.Length) throw new ArgumentException(a + " needs a value");
                string v = args[++i];
                switch (a)
                {
                    case "--size": cfg.Size = ParseSize(v); break;
                    case "--count": cfg.Count = ParseSize(v); break;
                    case "--buffer-size": cfg.BufferSize = ParseSize(v); break;
                    case "--rounds": cfg.Rounds = int.Parse(v, Inv); break;
                    case "--clients": cfg.Clients = int.Parse(v, Inv); break;
                    case "--cpu-server": cfg.CpuServer = int.Parse(v, Inv); break;
                    case "--cpu-client": cfg.CpuClient = int.Parse(v, Inv); break;
                    case "--serve": cfg.Serve = v; continue;  // not passed on
                    default: throw new ArgumentException("unknown option " + a);
                }
                cfg.Raw.Add(a);
                cfg.Raw.Add(v);
                continue;
            }
            if (haveTest) throw new ArgumentException("unexpected argument " + a);
            switch (a)
            {
                case "latency": cfg.Test = Test.Latency; break;
                case "throughput": cfg.Test = Test.Throughput; break;
                case "messages": cfg.Test = Test.Messages; break;
                case "connect": cfg.Test = Test.Connect; break;
                default: throw new ArgumentException("unknown test " + a + " (latency, throughput, messages, connect)");
            }
            cfg.Raw.Insert(0, a);
            haveTest = true;
        }
        if (!haveTest) throw new ArgumentException("no test given (latency, throughput, messages, connect)");
        if (cfg.Clients != 1) throw new ArgumentException("--clients: PipeBench runs one client");
        if (cfg.Rounds < 1) throw new ArgumentException("--rounds must be at least 1");
        return cfg;
    }

    // The same defaults as config::apply_defaults() in bench/common/harness.cpp.
    static void ApplyDefaults(Config c)
    {
        if (c.Size == 0)
            c.Size = c.Test == Test.Throughput ? 64 * 1024 : c.Test == Test.Connect ? 1 : 64;
        if (c.Count == 0)
        {
            switch (c.Test)
            {
                case Test.Latency: c.Count = 10000; break;
                case Test.Throughput: c.Count = Math.Max(1, (1L << 30) / c.Size); break;
                case Test.Messages: c.Count = 1000000; break;
                case Test.Connect: c.Count = 2000; break;
            }
        }
        if (c.Test == Test.Connect) c.Size = 1;
    }

    // The same schedule as schedule() in harness.cpp: a warm-up round, then the timed rounds.
    static List<long> Schedule(Config c)
    {
        var r = new List<long>();
        long share = c.Count;
        if (c.Test == Test.Latency)
        {
            r.Add(Math.Min(Math.Max(share / 10, 1), 1000));
            r.Add(share);
            return r;
        }
        long n = Math.Max(1, Math.Min(share, c.Rounds));
        r.Add(c.Test == Test.Connect ? Math.Min(Math.Max(share / 10, 1), 100) : Math.Max(1, share / n / 2));
        for (long i = 0; i < n; i++) r.Add(share / n + (i < share % n ? 1 : 0));
        return r;
    }

    static void Pin(int cpu)
    {
        if (cpu < 0) return;
        if (cpu >= 64) throw new ArgumentException("CPU numbers above 63 are not supported");
        // Every thread of the runtime, not only this one: Mono has started several already.
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            ulong mask = 1UL << cpu;
            sched_setaffinity(int.Parse(Path.GetFileName(dir), Inv), (IntPtr)8, ref mask);
        }
        ulong self = 1UL << cpu;
        if (sched_setaffinity(0, (IntPtr)8, ref self) != 0)
            throw new IOException("cannot pin to CPU " + cpu + ": errno " + Marshal.GetLastWin32Error());
    }

    static void ReadExact(Stream s, byte[] buf, int count)
    {
        int off = 0;
        while (off < count)
        {
            int n = s.Read(buf, off, count - off);
            if (n == 0) throw new EndOfStreamException("unexpected end of stream");
            off += n;
        }
    }

    static void Serve(Config c)
    {
        Pin(c.CpuServer);
        int buf = (int)c.BufferSize;  // 0: the system default, as in .NET
        using (var server = new NamedPipeServerStream(c.Serve, PipeDirection.InOut, 1,
                   PipeTransmissionMode.Byte, PipeOptions.None, buf, buf))
        {
            Console.Out.WriteLine("ready");
            Console.Out.Flush();
            var plan = Schedule(c);
            var ack = new byte[] { 1 };
            switch (c.Test)
            {
                case Test.Latency:
                {
                    server.WaitForConnection();
                    var b = new byte[c.Size];
                    foreach (long n in plan)
                        for (long i = 0; i < n; i++)
                        {
                            ReadExact(server, b, b.Length);
                            server.Write(b, 0, b.Length);
                        }
                    break;
                }
                case Test.Throughput:
                case Test.Messages:
                {
                    server.WaitForConnection();
                    var b = new byte[Math.Max(c.Size, 64 * 1024)];
                    foreach (long n in plan)
                    {
                        long remaining = n * c.Size;
                        while (remaining > 0)
                        {
                            int got = server.Read(b, 0, (int)Math.Min(remaining, b.Length));
                            if (got == 0) throw new EndOfStreamException("unexpected end of stream");
                            remaining -= got;
                        }
                        server.Write(ack, 0, 1);
                    }
                    break;
                }
                case Test.Connect:
                {
                    var b = new byte[1];
                    foreach (long n in plan)
                        for (long i = 0; i < n; i++)
                        {
                            server.WaitForConnection();
                            ReadExact(server, b, 1);
                            server.Write(ack, 0, 1);
                            server.Disconnect();
                        }
                    break;
                }
            }
        }
    }

    static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0) return 0;
        long rank = (long)Math.Ceiling(p / 100.0 * sorted.Length);
        rank = Math.Min(Math.Max(rank, 1), sorted.Length);
        return sorted[rank - 1];
    }

    // The row name in the report: "mono", or "dotnet" and the runtime's major version.
    static readonly string SystemName =
        Type.GetType("Mono.Runtime") != null ? "mono" : "dotnet" + Environment.Version.Major;

    static double Us(long ticks) { return ticks * 1e6 / Stopwatch.Frequency; }

    static int RunClient(Config c)
    {
        string name = "npipe-bench-" + SystemName + "-" + Process.GetCurrentProcess().Id;
        // `mono` or `dotnet`: the host that runs this assembly runs the server too.
        string host = Process.GetCurrentProcess().MainModule.FileName;
        string exe = Assembly.GetExecutingAssembly().Location;
        var psi = new ProcessStartInfo(host)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            Arguments = "\"" + exe + "\" " + string.Join(" ", c.Raw) + " --serve " + name,
        };
        using (var server = Process.Start(psi))
        {
            try
            {
                Pin(c.CpuClient);
                string line = server.StandardOutput.ReadLine();
                if (line != "ready")
                {
                    server.WaitForExit();
                    throw new IOException("the server failed before listening (exit " + server.ExitCode + ")");
                }
                string result = Measure(c, name);
                server.WaitForExit();
                if (server.ExitCode != 0)
                    throw new IOException("the server process exited with status " + server.ExitCode);
                Console.Out.Write(result);
                return 0;
            }
            finally
            {
                if (!server.HasExited) server.Kill();
            }
        }
    }

    static string Measure(Config c, string name)
    {
        var plan = Schedule(c);
        var sb = new StringBuilder();
        string sys = SystemName;
        string head = "{\"system\":\"" + sys + "\",\"test\":\"" + c.Test.ToString().ToLowerInvariant() +
                      "\",\"size\":" + c.Size + ",\"count\":" + c.Count + ",\"clients\":1,\"cpu_server\":" +
                      c.CpuServer + ",\"cpu_client\":" + c.CpuClient + ",\"buffer_size\":" + c.BufferSize;
        if (c.Test == Test.Latency)
        {
            var samples = new double[plan[1]];
            using (var p = new NamedPipeClientStream(".", name, PipeDirection.InOut))
            {
                p.Connect();
                var outb = new byte[c.Size];
                var inb = new byte[c.Size];
                for (int i = 0; i < outb.Length; i++) outb[i] = 0x5a;
                for (long i = 0; i < plan[0]; i++)
                {
                    p.Write(outb, 0, outb.Length);
                    ReadExact(p, inb, inb.Length);
                }
                for (long i = 0; i < plan[1]; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    p.Write(outb, 0, outb.Length);
                    ReadExact(p, inb, inb.Length);
                    samples[i] = Us(Stopwatch.GetTimestamp() - t0);
                }
            }
            Array.Sort(samples);
            double sum = 0;
            foreach (double v in samples) sum += v;
            double med = Percentile(samples, 50), p99 = Percentile(samples, 99), p999 = Percentile(samples, 99.9);
            if (c.Json)
                return head + string.Format(Inv,
                    ",\"median_us\":{0:F3},\"p99_us\":{1:F3},\"p999_us\":{2:F3},\"mean_us\":{3:F3},\"min_us\":{4:F3},\"max_us\":{5:F3}",
                    med, p99, p999, sum / samples.Length, samples[0], samples[samples.Length - 1]) + "}\n";
            return string.Format(Inv,
                "{0} latency: {1} round trips of {2} B, 1 client, {3}\n  median {4:F2} us   p99 {5:F2} us   p99.9 {6:F2} us   (mean {7:F2}, min {8:F2}, max {9:F2})\n",
                sys, samples.Length, c.Size, Placement(c), med, p99, p999, sum / samples.Length, samples[0],
                samples[samples.Length - 1]);
        }

        var rates = new List<double>();
        var ack = new byte[1];
        if (c.Test == Test.Connect)
        {
            var one = new byte[] { 0x5a };
            for (int k = 0; k < plan.Count; k++)
            {
                long t0 = Stopwatch.GetTimestamp();
                for (long i = 0; i < plan[k]; i++)
                {
                    using (var p = new NamedPipeClientStream(".", name, PipeDirection.InOut))
                    {
                        p.Connect();
                        p.Write(one, 0, 1);
                        ReadExact(p, ack, 1);
                    }
                }
                if (k > 0) rates.Add(plan[k] / (Us(Stopwatch.GetTimestamp() - t0) / 1e6));
            }
        }
        else
        {
            using (var p = new NamedPipeClientStream(".", name, PipeDirection.InOut))
            {
                p.Connect();
                var outb = new byte[c.Size];
                for (int i = 0; i < outb.Length; i++) outb[i] = 0x5a;
                for (int k = 0; k < plan.Count; k++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    for (long i = 0; i < plan[k]; i++) p.Write(outb, 0, outb.Length);
                    ReadExact(p, ack, 1);
                    double secs = Us(Stopwatch.GetTimestamp() - t0) / 1e6;
                    long units = c.Test == Test.Throughput ? plan[k] * c.Size : plan[k];
                    if (k > 0) rates.Add(units / secs);
                }
            }
        }
        var sorted = rates.ToArray();
        Array.Sort(sorted);
        double rate = Percentile(sorted, 50);
        double scale = c.Test == Test.Throughput ? 1e-9 : 1;
        string key = c.Test == Test.Throughput ? "gbps" : c.Test == Test.Messages ? "msgs_per_s" : "conns_per_s";
        string f = c.Test == Test.Throughput ? "F4" : "F1";
        if (c.Json)
        {
            var rs = new List<string>();
            foreach (double r in rates) rs.Add((r * scale).ToString(f, Inv));
            return head + ",\"" + key + "\":" + (rate * scale).ToString(f, Inv) + ",\"rounds\":[" +
                   string.Join(",", rs) + "]}\n";
        }
        string what = c.Test == Test.Throughput ? c.Count + " writes of " + c.Size + " B"
                    : c.Test == Test.Messages ? c.Count + " messages of " + c.Size + " B one way"
                    : c.Count + " connections (connect, one byte each way, close)";
        string unit = c.Test == Test.Throughput ? " GB/s" : c.Test == Test.Messages ? " messages/s" : " connections/s";
        sb.Append(sys + " " + c.Test.ToString().ToLowerInvariant() + ": " + what + ", 1 client, " + Placement(c) + "\n  ");
        sb.Append((rate * scale).ToString(c.Test == Test.Throughput ? "F3" : "F0", Inv) + unit + " (median of " +
                  rates.Count + " rounds:");
        foreach (double r in rates) sb.Append(" " + (r * scale).ToString(c.Test == Test.Throughput ? "F3" : "F0", Inv));
        sb.Append(")\n");
        return sb.ToString();
    }

    static string Placement(Config c)
    {
        Func<int, string> cpu = n => n < 0 ? "any CPU" : "CPU " + n;
        return "server on " + cpu(c.CpuServer) + ", client on " + cpu(c.CpuClient);
    }
}
