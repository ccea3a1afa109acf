using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>
/// Data-parallel training over a communicator: the step's reductions for DDP and ZeRO-1/2. The trainable parameters
/// (in the model's order) are cut into contiguous runs, one per rank, balanced by size: the run a rank owns is what its
/// optimizer updates and keeps state for under ZeRO. Gradients travel in flat float32 buckets of at most
/// ddp_bucket_cap_mb. Every reduction is a reduce-scatter (each element summed in one place) followed, where all ranks
/// need the result, by an all-gather: the replicas then hold bit-identical values, which a plain all-reduce whose
/// summation order may differ between ranks would not promise.
/// </summary>
public sealed class DataParallel
{
    private readonly ICommunicator comm;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> parameters;
    private readonly int[] owner;             // rank owning each parameter
    private readonly List<(int Start, int End)> buckets = [];  // runs of parameter indices
    private readonly BucketCollectives collectives;

    public ZeroStage Stage { get; }
    public int Rank => comm.Rank;
    public int WorldSize => comm.WorldSize;
    public ICommunicator Communicator => comm;

    /// <param name="collectives">where the buckets live and what reduces them; host buffers over <paramref name="comm"/> by default.</param>
    /// <param name="owners">
    /// ZeRO-3: the owner of each trainable parameter as the parameter shards cut them (the gradients arrive reduced onto
    /// those owners); otherwise the balanced cut of the trainable parameters.
    /// </param>
    public DataParallel(ICommunicator comm, IReadOnlyList<(string Name, Parameter Parameter)> trainable, ZeroStage stage, double bucketCapMb,
        BucketCollectives? collectives = null, IReadOnlyDictionary<string, int>? owners = null)
    {
        this.comm = comm;
        this.collectives = collectives ?? new BucketCollectives(comm);
        parameters = trainable;
        Stage = stage;
        if (stage == ZeroStage.Parameters && owners is null) throw new ArgumentException("ZeRO-3 takes the owners from the parameter shards", nameof(owners));
        owner = owners is null ? Partition(trainable.Select(p => p.Parameter.numel()).ToArray(), comm.WorldSize) : trainable.Select(p => owners[p.Name]).ToArray();
        long cap = Math.Max(1, (long)(bucketCapMb * 1024 * 1024 / sizeof(float)));
        int start = 0;
        long size = 0;
        for (int i = 0; i < trainable.Count; i++)
        {
            long n = trainable[i].Parameter.numel();
            if (i > start && size + n > cap) { buckets.Add((start, i)); start = i; size = 0; }
            size += n;
        }
        if (start < trainable.Count) buckets.Add((start, trainable.Count));
    }

    /// <summary>Names of the parameters this rank updates (all of them without ZeRO).</summary>
    public IReadOnlySet<string> OwnedNames => parameters.Where((_, i) => Stage == ZeroStage.None || owner[i] == comm.Rank).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>Which rank owns each parameter, by name (the checkpoint's consolidation metadata).</summary>
    public IReadOnlyList<(string Name, int Rank)> Ownership => parameters.Select((p, i) => (p.Name, owner[i])).ToList();

    /// <summary>
    /// Contiguous runs of parameters, one per rank, cut where the running size crosses r/world of the total: rank r
    /// owns the parameters whose midpoint falls in [r, r+1)·total/world.
    /// </summary>
    public static int[] Partition(IReadOnlyList<long> sizes, int world)
    {
        double total = Math.Max(1, sizes.Sum());
        var result = new int[sizes.Count];
        long before = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            double mid = before + sizes[i] / 2.0;
            result[i] = Math.Min(world - 1, (int)(mid * world / total));
            before += sizes[i];
        }
        return result;
    }

    /// <summary>Rank 0's values of the trainable parameters to every rank (identical start weights).</summary>
    public void BroadcastParameters()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (start, end) in buckets)
        {
            using var buffer = Flatten(start, end, i => parameters[i].Parameter);
            collectives.Broadcast(buffer);
            Unflatten(buffer, start, end, (i, values) => parameters[i].Parameter.copy_(values));
        }
    }

    /// <summary>The step's trained-token count over all ranks, so that every rank divides by the same global count.</summary>
    public long GlobalUnits(long localUnits) => comm.Sum(localUnits);

    /// <summary>
    /// Sums the gradients over ranks. DDP and ZeRO-1: every rank ends with every summed gradient. ZeRO-2: each rank keeps
    /// only the summed gradients of the parameters it owns; the others are released. ZeRO-3: nothing left to do, each
    /// group's backward has summed its gradients onto their owners already.
    /// </summary>
    /// <param name="float64Sums">
    /// The step's local gradients as float64 sums, in the trainable parameters' order (see Training.GradientSums): they
    /// are reduced in float64 buckets and rounded once into the gradients. Null: the parameters' gradients themselves.
    /// </param>
    public void ReduceGradients(IReadOnlyList<Tensor?>? float64Sums = null)
    {
        if (float64Sums is not null && float64Sums.Count != parameters.Count)
            throw new ArgumentException($"{float64Sums.Count} sums for {parameters.Count} parameters", nameof(float64Sums));
        if (Stage == ZeroStage.Parameters)
        {
            if (float64Sums is not null) throw new InvalidOperationException("ZeRO-3 reduces each group's gradients in its backward; float64 sums are for replicated or ZeRO-1/2 parameters");
            return;
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var dtype = float64Sums is null ? ScalarType.Float32 : ScalarType.Float64;
        foreach (var (start, end) in buckets)
        {
            // A parameter that took no part in this step's graph still takes part with zeros: every rank runs the same collectives.
            using var buffer = Flatten(start, end, i => float64Sums is null ? parameters[i].Parameter.grad : float64Sums[i], dtype);
            if (Stage == ZeroStage.Gradients)
            {
                var counts = OwnerCounts(start, end);
                collectives.ReduceScatterSum(buffer, counts);
                Unflatten(buffer, start, end, (i, values) =>
                {
                    var p = parameters[i].Parameter;
                    if (owner[i] == comm.Rank) SetGrad(p, values);
                    else p.grad = null;
                });
            }
            else
            {
                var counts = EvenCounts(buffer.numel());
                collectives.ReduceScatterSum(buffer, counts);
                collectives.AllGather(buffer, counts);
                Unflatten(buffer, start, end, (i, values) => SetGrad(parameters[i].Parameter, values));
            }
        }
    }

    /// <summary>
    /// The float32 gradient norm of each parameter that has a gradient, in the trainable parameters' order, from this
    /// rank's norms of the gradients it holds (<paramref name="local"/>, null where it holds none): as they are under
    /// DDP/ZeRO-1 (every rank holds them all); under ZeRO-2/3 each owner's norms go to every rank (one all-reduce in
    /// which every element has a single non-zero contribution, so it is exact), so that the global norm is taken over
    /// the same vector, in the same order and the same float32 rounding, as in one process. A root of the ranks'
    /// summed squares would round differently, and AdamW carries a one-ulp change of the clip factor into the weights.
    /// </summary>
    public Tensor ParameterNorms(IReadOnlyList<Tensor?> local)
    {
        if (local.Count != parameters.Count) throw new ArgumentException($"{local.Count} norms for {parameters.Count} parameters", nameof(local));
        var device = local.FirstOrDefault(n => n is not null)?.device ?? collectives.Device;
        var held = local.OfType<Tensor>().ToArray();
        if (Stage is not (ZeroStage.Gradients or ZeroStage.Parameters)) return held.Length == 0 ? zeros(0, ScalarType.Float32, device) : stack(held);
        using var heldValues = held.Length == 0 ? zeros(0, ScalarType.Float32) : stack(held).cpu();
        var values = heldValues.data<float>().ToArray();
        const double Absent = -1;   // norms are never negative; x + 0 + … + 0 keeps the marker exact
        var shared = new double[parameters.Count];
        for (int i = 0, k = 0; i < shared.Length; i++)
        {
            double? mine = local[i] is null ? null : values[k++];
            if (owner[i] == comm.Rank) shared[i] = mine ?? Absent;
        }
        comm.AllReduce(shared.AsSpan());
        var present = shared.Where(v => v != Absent).Select(v => (float)v).ToArray();
        return tensor(present, ScalarType.Float32, device);
    }

    /// <summary>
    /// After the optimizer step: under ZeRO-1/2 each owner's updated values to every rank (ZeRO-3 keeps them with their
    /// owner until the next gather); all gradients released.
    /// </summary>
    public void AfterStep()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (Stage is ZeroStage.OptimizerState or ZeroStage.Gradients)
        {
            foreach (var (start, end) in buckets)
            {
                using var buffer = Flatten(start, end, i => owner[i] == comm.Rank ? parameters[i].Parameter : null);
                collectives.AllGather(buffer, OwnerCounts(start, end));
                Unflatten(buffer, start, end, (i, values) => parameters[i].Parameter.copy_(values));
            }
        }
        foreach (var (_, p) in parameters) p.grad = null;
    }

    /// <summary>Float64 host values summed over ranks (losses and metrics at logging steps).</summary>
    public void SumInPlace(double[] values) => comm.AllReduce(values.AsSpan());

    private int[] OwnerCounts(int start, int end)
    {
        var counts = new int[comm.WorldSize];
        for (int i = start; i < end; i++) counts[owner[i]] += checked((int)parameters[i].Parameter.numel());
        return counts;
    }

    private int[] EvenCounts(long total)
    {
        var counts = new int[comm.WorldSize];
        for (int r = 0; r < counts.Length; r++) counts[r] = checked((int)(total * (r + 1) / counts.Length - total * r / counts.Length));
        return counts;
    }

    /// <summary>The tensors of parameters [start, end) as one flat buffer (float32 unless told) on the buckets' device (zeros where the tensor is null).</summary>
    private Tensor Flatten(int start, int end, Func<int, Tensor?> tensorOf, ScalarType dtype = ScalarType.Float32)
    {
        long total = 0;
        for (int i = start; i < end; i++) total += parameters[i].Parameter.numel();
        var buffer = zeros(total, dtype, collectives.Device);
        long offset = 0;
        for (int i = start; i < end; i++)
        {
            long n = parameters[i].Parameter.numel();
            if (tensorOf(i) is { } t) buffer.narrow(0, offset, n).copy_(t.detach().reshape(-1).to(dtype, collectives.Device));
            offset += n;
        }
        return buffer;
    }

    private void Unflatten(Tensor buffer, int start, int end, Action<int, Tensor> use)
    {
        long offset = 0;
        for (int i = start; i < end; i++)
        {
            var p = parameters[i].Parameter;
            long n = p.numel();
            use(i, buffer.narrow(0, offset, n).view(p.shape).to(p.dtype, p.device));
            offset += n;
        }
    }

    private static void SetGrad(Parameter p, Tensor values)
    {
        if (p.grad is { } g) g.copy_(values);
        else p.grad = values.clone().DetachFromDisposeScope();
    }
}
