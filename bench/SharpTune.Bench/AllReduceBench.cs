using System.Diagnostics;
using SharpTune.Distributed;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Collective bandwidth over MPI on this machine: 64 MiB of float32 gradients reduced in buckets of 1–64 MiB, as
/// MPI_Allreduce and as the reduce-scatter + all-gather pair the trainer uses. Runs itself under mpirun.
/// </summary>
public static class AllReduceBench
{
    public const string Mode = "allreduce";
    public const string ChildMode = "allreduce-child";
    public const string Usage = "allreduce [--nproc N]   all-reduce GB/s by bucket size over MPI (needs mpirun)";

    public static int Run(string[] args)
    {
        int nproc = args.Length >= 2 && args[0] == "--nproc" ? int.Parse(args[1]) : 2;
        var start = MpirunCommand.Build(nproc, null, null, Environment.ProcessPath!, []);
        // MpirunCommand ends with "<exe> train …"; the bench runs its own child mode instead.
        int train = start.ArgumentList.IndexOf("train");
        start.ArgumentList[train] = ChildMode;
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        process.WaitForExit();
        return process.ExitCode;
    }

    public static int RunChild(string[] args)
    {
        using var comm = Ranks.Start(LaunchEnvironment.Read(), TimeSpan.FromSeconds(120));
        const long totalBytes = 64L << 20;
        using var buffer = ones(totalBytes / sizeof(float), ScalarType.Float32);
        if (comm.Rank == 0) Console.WriteLine($"{comm.WorldSize} ranks, 64 MiB float32 per step; algorithm bandwidth = bytes / time");
        foreach (int mb in new[] { 1, 4, 16, 25, 64 })
        {
            long bucket = (long)mb << 20;
            double allreduce = Time(comm, () => Buckets(buffer, bucket, (p, n) => comm.AllReduce(p, n, ElementType.Float32)));
            double pair = Time(comm, () => Buckets(buffer, bucket, (p, n) =>
            {
                var counts = Enumerable.Range(0, comm.WorldSize).Select(r => (int)(n * (r + 1) / comm.WorldSize - n * r / comm.WorldSize)).ToArray();
                comm.ReduceScatterSum(p, counts, ElementType.Float32);
                comm.AllGather(p, counts, ElementType.Float32);
            }));
            if (comm.Rank == 0)
                Console.WriteLine($"bucket {mb,3} MiB: MPI_Allreduce {totalBytes / allreduce / 1e9:F2} GB/s, reduce-scatter + all-gather {totalBytes / pair / 1e9:F2} GB/s");
        }
        return 0;
    }

    private static unsafe void Buckets(Tensor buffer, long bucketBytes, Action<nint, long> reduce)
    {
        long elements = buffer.numel(), per = bucketBytes / sizeof(float);
        fixed (byte* p = buffer.bytes)
            for (long done = 0; done < elements; done += per) reduce((nint)(p + done * sizeof(float)), Math.Min(per, elements - done));
    }

    private static double Time(ICommunicator comm, Action step)
    {
        step();   // warm-up: connections and buffers
        comm.Barrier();
        var clock = Stopwatch.StartNew();
        const int reps = 5;
        for (int i = 0; i < reps; i++) step();
        comm.Barrier();
        return clock.Elapsed.TotalSeconds / reps;
    }
}
