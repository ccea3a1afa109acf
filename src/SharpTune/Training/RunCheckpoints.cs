using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// A run's checkpoints: what a save writes (the adapter or the model, optimizer, schedule, state, the batch source's
/// own state, ZeRO's per-rank optimizer shards, a hub push) and how a resume reads it all back.
/// </summary>
public sealed class RunCheckpoints
{
    private readonly TrainConfig config;
    private readonly CausalLM model;
    private readonly LoraSettings? lora;
    private readonly Optimizer optimizer;
    private readonly LrSchedule schedule;
    private readonly ICheckpointedSource? sourceState;
    private readonly RankParallelism ranks;
    private readonly HubPush? hub;
    private readonly Checkpointer checkpointer;
    private readonly DistributedCheckpoint? sharded;

    public RunCheckpoints(TrainConfig config, CausalLM model, LoraSettings? lora, Optimizer optimizer, LrSchedule schedule, IBatchSource train, RankParallelism ranks, HubPush? hub)
    {
        (this.config, this.model, this.lora, this.optimizer, this.schedule, this.ranks, this.hub) = (config, model, lora, optimizer, schedule, ranks, hub);
        sourceState = train as ICheckpointedSource;
        checkpointer = new Checkpointer(config.OutputDir, config.SaveTotalLimit);
        sharded = ranks.Parallel is null ? null : new DistributedCheckpoint(ranks.Parallel, config.OutputDir);
    }

    public void Save(TrainState state)
    {
        // ZeRO-3: the checkpoint's model files are the consolidated weights, streamed by rank 0 while the other ranks
        // take part in each parameter's gather (the adapters of LoRA are replicated: nothing to gather).
        if (sharded is null) Write(state, null);
        else sharded.Save(state, optimizer, completeShards => Write(state, completeShards), FollowWeightsWrite);
    }

    /// <summary>Restores the state, weights, optimizer (this rank's <paramref name="ownedNames"/>) and batch source from a checkpoint folder.</summary>
    public void Restore(string checkpointDir, TrainState state, IReadOnlySet<string> ownedNames)
    {
        // ZeRO-3: every parameter present to load the checkpoint's weights into; each rank then keeps its own.
        using var loading = ranks.Materialized(values: false);
        Checkpointer.Restore(checkpointDir, state, optimizer, ReadWeights, sourceState is null ? null : sourceState.RestoreState,
            // A ZeRO checkpoint's optimizer state is spread over one file per rank that wrote it.
            ranks.Parallel is not null || File.Exists(Path.Combine(checkpointDir, DistributedCheckpoint.MetadataFile))
                ? dir => DistributedCheckpoint.LoadOwned(dir, optimizer, ownedNames) : null);
    }

    /// <summary>
    /// The trained weights into a folder: the adapter under LoRA, else the whole model. Under ZeRO-3 (full fine-tune,
    /// shards not materialised) a collective: rank 0 runs it while every other rank runs <see cref="FollowWeightsWrite"/>.
    /// </summary>
    public void WriteWeights(string dir)
    {
        if (lora is not null) Lora.Save(model, lora, dir);
        else if (StreamedWeights() is { } streamed) ModelIO.SaveStreamed(model.Config, streamed, model.DType, dir);
        else ModelIO.Save(model, dir);
    }

    /// <summary>Whether <see cref="WriteWeights"/> needs the other ranks to follow it (ZeRO-3, full fine-tune).</summary>
    public bool StreamsWeights => lora is null && ranks.Shards is { Materialized: false };

    /// <summary>
    /// A rank other than 0 while rank 0 runs <see cref="WriteWeights"/>: its part in each parameter's gather, in the
    /// order the writer produces them (each copy freed before the next); nothing when the write needs no gathering.
    /// </summary>
    public void FollowWeightsWrite()
    {
        if (StreamedWeights() is not { } streamed) return;
        foreach (var tensor in SafeTensorsWriter.StreamOrder(streamed, ModelIO.DefaultMaxShardBytes)) tensor.Produce().Dispose();
    }

    /// <summary>
    /// ZeRO-3, full fine-tune: the model's parameters as tensors that the writer gathers one at a time (their full
    /// shapes known on every rank), in the model's dtype as <see cref="ModelIO.Save"/> writes them; otherwise null.
    /// </summary>
    private List<StreamedTensor>? StreamedWeights()
    {
        if (!StreamsWeights) return null;
        var shards = ranks.Shards!;
        var target = model.DType;
        return model.named_parameters().Select(p =>
        {
            var (name, parameter) = (p.name, p.parameter);
            long[]? shardedShape = shards.ShapeOf(name);
            return new StreamedTensor(name, target, shardedShape ?? parameter.shape, () =>
            {
                var values = shardedShape is null ? parameter.detach() : shards.GatherOne(name);
                return values.dtype == target ? values : values.to(target, disposeAfter: true);
            });
        }).ToList();
    }

    private void Write(TrainState state, Action<string>? completeShards)
    {
        Action<string>? writeState = sourceState is null && completeShards is null ? null : dir => { sourceState?.SaveState(dir); completeShards?.Invoke(dir); };
        string saved = checkpointer.Save(state, optimizer, schedule, WriteWeights, ConfigWriter.ToYaml(config), writeState);
        hub?.AfterSave(saved, state.Step);
    }

    private void ReadWeights(string dir)
    {
        if (lora is not null)
        {
            Lora.LoadWeights(model, dir);
            return;
        }
        using var checkpoint = SafeTensors.SafeTensorsCheckpoint.Open(dir);
        ModelLoader.LoadParameters(model, checkpoint, dir);
    }
}
