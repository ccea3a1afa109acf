namespace SharpTune.Bench;

/// <summary>Benchmarks, one mode per first argument; each prints its own figures.</summary>
public static class Program
{
    private static readonly Dictionary<string, (string Usage, Func<string[], int> Run)> Modes = new(StringComparer.Ordinal)
    {
        [SafeTensorsLoadBench.Mode] = (SafeTensorsLoadBench.Usage, SafeTensorsLoadBench.Run),
        [SafeTensorsLoadBench.ChildMode] = ("(internal) measured child of safetensors-load", SafeTensorsLoadBench.RunChild),
        [QuantizationBench.Mode] = (QuantizationBench.Usage, QuantizationBench.Run),
        [QuantizationBench.ChildMode] = ("(internal) measured child of quant", QuantizationBench.RunChild),
        [ModelBench.Mode] = (ModelBench.Usage, ModelBench.Run),
        [TokenizerBench.Mode] = (TokenizerBench.Usage, TokenizerBench.Run),
        [GenerateBench.Mode] = (GenerateBench.Usage, GenerateBench.Run),
        [TrainBench.Mode] = (TrainBench.Usage, TrainBench.Run),
        [DataBench.Mode] = (DataBench.Usage, DataBench.Run),
        [MoeBench.Mode] = (MoeBench.Usage, MoeBench.Run),
        [TrainBench.ChildMode] = ("(internal) measured child of train", TrainBench.RunChild),
        [TrainBench.SpinMode] = ("(internal) busy process of train --contention", TrainBench.Spin),
        [GpuTrainBench.Mode] = (GpuTrainBench.Usage, GpuTrainBench.Run),
        [GpuTrainBench.ChildMode] = ("(internal) measured child of gpu-train", GpuTrainBench.RunChild),
        [JobsBench.Mode] = (JobsBench.Usage, JobsBench.Run),
        [ServeLoadBench.Mode] = (ServeLoadBench.Usage, ServeLoadBench.Run),
        [MemoryBench.Mode] = (MemoryBench.Usage, MemoryBench.Run),
        [AllReduceBench.Mode] = (AllReduceBench.Usage, AllReduceBench.Run),
        [ZeroMemoryBench.Mode] = (ZeroMemoryBench.Usage, ZeroMemoryBench.Run),
        [AllReduceBench.ChildMode] = ("(internal) one rank of allreduce", AllReduceBench.RunChild),
        [NcclCheckBench.Mode] = (NcclCheckBench.Usage, NcclCheckBench.Run),
    };

    public static int Main(string[] args)
    {
        // As the CLI does; OMP_WAIT_POLICY set by the caller (e.g. ACTIVE, to compare) wins.
        string waitPolicy = Native.OpenMpPolicy.ApplyBeforeTorchLoads();
        using var heapPolicy = Native.HeapPolicy.Apply();
        if (args.Length > 0 && args[0] == TrainBench.Mode) Console.WriteLine($"OpenMP wait policy: {waitPolicy}; malloc: {heapPolicy.Description}");
        if (args.Length == 0 || !Modes.TryGetValue(args[0], out var mode))
        {
            Console.Error.WriteLine(args.Length == 0 ? "error: no benchmark named" : $"error: unknown benchmark '{args[0]}'");
            Console.Error.WriteLine("usage:");
            foreach (var (name, (usage, _)) in Modes)
                if (!name.EndsWith("-child", StringComparison.Ordinal) && !name.EndsWith("-spin", StringComparison.Ordinal)) Console.Error.WriteLine($"  {usage}");
            return 2;
        }
        return mode.Run(args[1..]);
    }
}
