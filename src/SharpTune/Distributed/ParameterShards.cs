using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>
/// ZeRO-3 parameter sharding. The sharded parameters (all of a full fine-tune; the frozen base under LoRA) are cut into
/// contiguous runs of whole parameters, one run per rank, balanced by size (the same cut as ZeRO-1/2's optimizer
/// partition): a rank keeps only the parameters it owns; the others hold an empty storage between uses. A group — one
/// decoder layer, the embedding, the final norm, lm_head — is gathered (each parameter broadcast from its owner into a
/// fresh storage) just before it runs and freed right after; in backward it is gathered again, its gradients are summed
/// onto the owners (a reduce-scatter whose parts are the owners' parameters) and it is freed again. Whole parameters
/// (not flat slices) are what a rank owns, so every optimizer — also those that are not element-wise (Muon's
/// orthogonalisation, Adafactor's factored moments, 8-bit blockwise state) — updates exactly what it would in one
/// process, and checkpoints stay keyed by parameter name. Under QLoRA the quantized base's stored tensors (packed
/// 4-bit codes, absmax, double-quant state, int8 codes and row scales) are sharded the same way: whole tensors, owned
/// by the rank the byte-balanced cut gives them to, broadcast as bytes for each use; they never take a gradient.
/// </summary>
public sealed class ParameterShards
{
    /// <summary>One sharded tensor: a parameter, or a quantized weight's stored tensor (not a parameter, no gradient).</summary>
    private sealed record Member(string Name, Tensor Tensor, int Owner, long[] Shape)
    {
        public bool IsParameter => Tensor is Parameter;
        /// <summary>From the shape, not the tensor: a member this rank does not own holds an empty storage between uses.</summary>
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
        public long Bytes => Elements * Tensor.element_size();
    }

    private readonly ICommunicator comm;
    private readonly Dictionary<nn.Module, Member[]> groups = new(ReferenceEqualityComparer.Instance);
    private readonly List<Member> members = [];
    private readonly long reduceWindow;
    private int materialized;

    /// <param name="groups">
    /// Each group's module and its sharded tensors (full names), in the model's order: parameters, and under QLoRA the
    /// stored tensors of its quantized weights. The cut balances bytes, so 4-bit codes weigh what they occupy.
    /// </param>
    /// <param name="bucketCapMb">
    /// ddp_bucket_cap_mb / reduce_bucket_size: the most a gradient reduction hands MPI at once. MPI's reduce-scatter takes
    /// scratch memory of about its message's size, so a parameter's gradient is reduced in windows of this size instead
    /// of whole (a 65 MiB embedding gradient would otherwise cost up to twice that again, at the step's peak).
    /// </param>
    public ParameterShards(ICommunicator comm, IReadOnlyList<(nn.Module Group, IReadOnlyList<(string Name, Tensor Tensor)> Tensors)> groups, double bucketCapMb)
    {
        this.comm = comm;
        reduceWindow = Math.Max(1, (long)(bucketCapMb * 1024 * 1024 / sizeof(float)));
        var all = groups.SelectMany(g => g.Tensors).ToList();
        var owner = DataParallel.Partition(all.Select(t => t.Tensor.numel() * t.Tensor.element_size()).ToArray(), comm.WorldSize);
        int k = 0;
        foreach (var (group, tensors) in groups)
        {
            var list = tensors.Select(t => new Member(t.Name, t.Tensor, owner[k++], t.Tensor.shape)).ToArray();
            this.groups[group] = list;
            members.AddRange(list);
        }
        ReleaseAll();
    }

    public int WorldSize => comm.WorldSize;

    /// <summary>Which rank owns each sharded parameter, by name.</summary>
    public IReadOnlyDictionary<string, int> Owners => members.ToDictionary(m => m.Name, m => m.Owner, StringComparer.Ordinal);

    /// <summary>Parameter elements this rank keeps between uses (its own parameters).</summary>
    public long OwnedElements => members.Where(m => m.IsParameter && m.Owner == comm.Rank).Sum(m => m.Elements);

    /// <summary>Bytes of quantized base (stored tensors that are not parameters) this rank keeps between uses, and of all ranks together.</summary>
    public (long Owned, long Total) QuantizedBytes =>
        (members.Where(m => !m.IsParameter && m.Owner == comm.Rank).Sum(m => m.Bytes), members.Where(m => !m.IsParameter).Sum(m => m.Bytes));

    /// <summary>Whether every parameter is present on this rank (between <see cref="MaterializeAll"/> and <see cref="ReleaseAll"/>): groups then run without collectives.</summary>
    public bool Materialized => materialized > 0;

    /// <summary>Whether <paramref name="group"/> has sharded parameters.</summary>
    public bool IsSharded(nn.Module group) => groups.ContainsKey(group);

    /// <summary>Every rank: the group's parameters present (broadcast from their owners). A no-op while materialized.</summary>
    public void Gather(nn.Module group)
    {
        if (Materialized || !groups.TryGetValue(group, out var list)) return;
        Gather(list, values: true);
    }

    /// <summary>Frees the storage of the group's parameters this rank does not own.</summary>
    public void Release(nn.Module group)
    {
        if (Materialized || !groups.TryGetValue(group, out var list)) return;
        Release(list);
    }

    /// <summary>
    /// Before the group's backward: the gradients this rank holds for its own parameters of the group, taken aside so
    /// that the backward leaves only this micro-batch's local gradients (given back, with the sum added, by
    /// <see cref="ReduceGradients"/>).
    /// </summary>
    public Tensor?[] TakeGradients(nn.Module group)
    {
        if (!groups.TryGetValue(group, out var list)) return [];
        var taken = new Tensor?[list.Length];
        for (int i = 0; i < list.Length; i++)
        {
            var p = list[i].Tensor;
            if (!p.requires_grad || p.grad is not { } grad) continue;
            // The handle alone moves aside (no copy): with p.grad null the backward writes a fresh local gradient. The
            // getter's own handle is disposed at once, so that the taken one is the only reference besides the gradient.
            taken[i] = grad.detach().DetachFromDisposeScope();
            grad.Dispose();
            p.grad = null;
        }
        return taken;
    }

    /// <summary>
    /// After the group's backward: the local gradients of its trainable parameters summed over ranks onto each
    /// parameter's owner (one reduce-scatter whose parts are the owners' parameters, in order), added to what the owner
    /// held before; the other ranks drop theirs.
    /// </summary>
    public void ReduceGradients(nn.Module group, Tensor?[] taken)
    {
        if (!groups.TryGetValue(group, out var list)) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var trainable = Enumerable.Range(0, list.Length).Where(i => list[i].Tensor.requires_grad).ToList();
        if (trainable.Count == 0) return;
        if (trainable.Count == 1 && ReduceInPlace(list[trainable[0]], taken[trainable[0]])) return;
        // Sizes come from the members' shapes: the group's gathered parameters may already be released.
        long total = trainable.Sum(i => list[i].Elements);
        var buffer = zeros(total, ScalarType.Float32);
        var counts = new long[comm.WorldSize];
        long offset = 0;
        foreach (int i in trainable)
        {
            var p = list[i].Tensor;
            long n = list[i].Elements;
            // A parameter without a gradient in this backward takes part with zeros: every rank runs the same collective.
            if (p.grad is { } g) buffer.narrow(0, offset, n).copy_(g.detach().reshape(-1).to(ScalarType.Float32).cpu());
            counts[list[i].Owner] += n;
            offset += n;
        }
        ReduceScatterInWindows(buffer, counts);
        offset = 0;
        foreach (int i in trainable)
        {
            var p = list[i].Tensor;
            long n = list[i].Elements;
            if (list[i].Owner == comm.Rank)
            {
                // The sum is a fresh tensor (never a view of the group buffer, which would keep all of it alive); its
                // handle and the taken one die with this scope, the gradient keeps the storage.
                var sum = buffer.narrow(0, offset, n).view(list[i].Shape).to(p.dtype, p.device, copy: true);
                if (taken[i] is { } before) { before.add_(sum); p.grad = before; before.Dispose(); }
                else p.grad = sum;
            }
            else p.grad = null;
            offset += n;
        }
    }

    /// <summary>
    /// The in-place reduce-scatter of <paramref name="buffer"/> (part r, of counts[r] elements, summed onto rank r) as a
    /// run of reduce-scatters over windows of at most <see cref="reduceWindow"/> elements: each window's parts are its
    /// overlaps with the ranks' parts, so every rank's sum lands where one call would leave it, and MPI's scratch stays
    /// the size of a window.
    /// </summary>
    private void ReduceScatterInWindows(Tensor buffer, long[] counts)
    {
        long total = counts.Sum();
        var window = new int[comm.WorldSize];
        for (long start = 0; start < total; start += reduceWindow)
        {
            long end = Math.Min(total, start + reduceWindow), partStart = 0;
            for (int r = 0; r < counts.Length; r++)
            {
                long partEnd = partStart + counts[r];
                window[r] = (int)Math.Max(0, Math.Min(end, partEnd) - Math.Max(start, partStart));
                partStart = partEnd;
            }
            using var slice = buffer.narrow(0, start, end - start);
            TensorMemory.With(slice, (address, _) => comm.ReduceScatterSum(address, window, ElementType.Float32));
        }
    }

    /// <summary>
    /// A group of one trainable parameter (the embedding, lm_head: the largest) whose local gradient is a contiguous
    /// float32 host tensor is reduced in that gradient itself, so no group buffer and no copy of the sum is made.
    /// </summary>
    private bool ReduceInPlace(Member member, Tensor? taken)
    {
        var p = member.Tensor;
        if (p.grad is not { } g || g.dtype != ScalarType.Float32 || g.device_type != DeviceType.CPU || !g.is_contiguous()) return false;
        var counts = new long[comm.WorldSize];
        counts[member.Owner] = g.numel();
        using (var flat = g.view(-1)) ReduceScatterInWindows(flat, counts);
        if (member.Owner != comm.Rank) p.grad = null;
        else if (taken is not null) { taken.add_(g); p.grad = taken; taken.Dispose(); }
        return true;
    }

    /// <summary>
    /// Every rank: every parameter present, for what needs the whole model (saving, merging, hooks that generate).
    /// <paramref name="values"/> false only allocates (a checkpoint is about to be loaded into it). Nested calls count.
    /// </summary>
    public void MaterializeAll(bool values = true)
    {
        if (materialized++ > 0) return;
        foreach (var list in groups.Values) Gather(list, values);
    }

    /// <summary>The full shape of a sharded parameter (also on ranks that hold it empty), or null when it is not sharded.</summary>
    public long[]? ShapeOf(string name) => members.FirstOrDefault(m => m.Name == name)?.Shape.ToArray();

    /// <summary>
    /// Every rank, for the same parameter in the same order (a collective): the values of one sharded parameter — a new
    /// handle to the owner's own tensor there, a copy broadcast from it elsewhere — without presenting it on the model.
    /// A streamed save walks the model this way, so no rank holds more than one parameter it does not own.
    /// </summary>
    public Tensor GatherOne(string name)
    {
        var m = members.FirstOrDefault(x => x.Name == name) ?? throw new ArgumentException($"{name} is not a sharded parameter", nameof(name));
        using var noGrad = no_grad();
        if (Materialized) return m.Tensor.detach();
        if (m.Owner == comm.Rank)
        {
            Broadcast(m.Tensor, m.Owner);
            return m.Tensor.detach();
        }
        var copy = empty(m.Shape, m.Tensor.dtype, m.Tensor.device);
        Broadcast(copy, m.Owner);
        return copy;
    }

    /// <summary>Ends <see cref="MaterializeAll"/>: back to each rank holding its own parameters only.</summary>
    public void ReleaseAll()
    {
        if (materialized > 0 && --materialized > 0) return;
        foreach (var list in groups.Values) Release(list);
    }

    private void Gather(Member[] list, bool values)
    {
        using var noGrad = no_grad();
        foreach (var m in list)
        {
            if (m.Owner != comm.Rank)
            {
                // The temporary's handle is disposed at once: the parameter alone holds the storage, so Release frees it.
                using var storage = empty(m.Shape, m.Tensor.dtype, m.Tensor.device);
                m.Tensor.set_(storage);
            }
            if (values) Broadcast(m.Tensor, m.Owner);
        }
    }

    private void Release(Member[] list)
    {
        using var noGrad = no_grad();
        foreach (var m in list)
            if (m.Owner != comm.Rank && m.Tensor.numel() > 0)
            {
                using var none = empty(0, m.Tensor.dtype, m.Tensor.device);
                m.Tensor.set_(none);
            }
    }

    /// <summary>The root's values of <paramref name="tensor"/> to every rank, in place on host memory (through a host copy on a GPU).</summary>
    private void Broadcast(Tensor tensor, int root)
    {
        long bytes = tensor.numel() * tensor.element_size();
        if (tensor.device_type == DeviceType.CPU && tensor.is_contiguous())
        {
            TensorMemory.With(tensor, (address, _) => comm.Broadcast(address, bytes, root));
            return;
        }
        using var host = tensor.detach().contiguous().cpu();
        TensorMemory.With(host, (address, _) => comm.Broadcast(address, bytes, root));
        tensor.copy_(host);
    }
}
