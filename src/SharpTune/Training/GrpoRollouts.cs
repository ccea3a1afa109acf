using System.Text.Json.Nodes;
using SharpTune.Data;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using SharpTune.Tokenization;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>One sampled completion as the logs show it.</summary>
public sealed record CompletionSample(string Prompt, string Completion, double Reward, double Advantage, IReadOnlyDictionary<string, double> Rewards);

/// <summary>The reward functions of a run with their weights (trl.reward_weights, 1 each when empty).</summary>
public sealed record RewardSet(IReadOnlyList<IRewardFunction> Functions, IReadOnlyList<double> Weights);

/// <summary>
/// GRPO's batches: each micro-batch is micro_batch_size / G prompts × G completions sampled from the current policy
/// (eval mode, no dropout), scored by the reward functions, with group-relative advantages and, when needed, the
/// sampling policy's and the reference's per-token log-probs. As TRL's sampler does, a training epoch walks a seeded
/// permutation of the prompts in whole optimizer steps, and each step's prompts are used for num_iterations steps in a
/// row: the first generates, the next ones reuse the kept rollouts (and their old log-probs). Every completion samples
/// with a seed of its own drawn from (seed, epoch, round, micro-batch, row), so the sampling is a function of the
/// position in training; the kept rollouts go into checkpoints. Exact resume follows from both.
/// </summary>
public sealed class GrpoRolloutSource : IBatchSource, ICheckpointedSource
{
    private const string StateFile = "grpo_rollouts.safetensors";
    private readonly IReadOnlyList<PromptExample> prompts;
    private readonly GrpoSettings settings;
    private readonly RewardSet rewards;
    private readonly HfTokenizer tokenizer;
    private IReadOnlyList<long> eosIds = [];
    private readonly int padId, promptsPerBatch, accumulation, samplesToKeep;
    private readonly long seed;
    private readonly bool training;
    private readonly Rollout?[] kept;
    private CausalLM? policy;
    private CausalLM? frozenReference;

    /// <param name="training">true: the shuffled, reused training stream; false: evaluation, every prompt once in order, same seeds at every evaluation.</param>
    public GrpoRolloutSource(IReadOnlyList<PromptExample> prompts, GrpoSettings settings, RewardSet rewards, HfTokenizer tokenizer,
        int padId, int microBatchSize, int gradientAccumulationSteps, long seed, bool training, int samplesToKeep = 3)
    {
        if (microBatchSize % settings.NumGenerations != 0)
            throw new InvalidInputException($"micro_batch_size: {microBatchSize} is not a multiple of trl.num_generations: {settings.NumGenerations}");
        (this.prompts, this.settings, this.rewards, this.tokenizer, this.padId) = (prompts, settings, rewards, tokenizer, padId);
        (promptsPerBatch, accumulation, this.seed, this.training, this.samplesToKeep) = (microBatchSize / settings.NumGenerations, gradientAccumulationSteps, seed, training, samplesToKeep);
        kept = new Rollout?[training ? gradientAccumulationSteps : 0];
        if (training && StepsPerEpochBeforeReuse == 0)
            throw new InvalidInputException($"datasets: {prompts.Count} training prompts do not fill one optimizer step of {promptsPerBatch * accumulation} prompts " +
                                            "(micro_batch_size / trl.num_generations × gradient_accumulation_steps); add prompts or lower those");
    }

    /// <summary>The sampled completions of the latest generated micro-batch (the first few rows).</summary>
    public IReadOnlyList<CompletionSample> LastSamples { get; private set; } = [];

    public int BatchesPerEpoch => training ? StepsPerEpochBeforeReuse * accumulation * settings.NumIterations : (prompts.Count + promptsPerBatch - 1) / promptsPerBatch;

    private int StepsPerEpochBeforeReuse => prompts.Count / (promptsPerBatch * accumulation);

    /// <summary>
    /// The policy that samples, for full fine-tuning with beta ≠ 0 the frozen starting model (null: adapters off), and
    /// the ids that end a completion (the model folder's and the tokenizer's EOS).
    /// </summary>
    public void Attach(CausalLM policyModel, CausalLM? reference, IReadOnlyList<long> eos)
    {
        policy = policyModel;
        frozenReference = reference;
        eosIds = eos;
    }

    public LabeledBatch Batch(int epoch, int index)
    {
        if (!training)
        {
            using var once = Generate(Enumerable.Range(index * promptsPerBatch, Math.Min(promptsPerBatch, prompts.Count - index * promptsPerBatch)).ToArray(), Mix(seed, -1, index, 0));
            return once.ToBatch();
        }
        int step = index / accumulation, micro = index % accumulation;
        int round = step / settings.NumIterations;
        var key = (epoch, round, micro);
        var rollout = kept[micro];
        // A rollout is reused for the num_iterations steps of its round; TRL regenerates when none is kept (an old checkpoint).
        if (rollout is null || rollout.Key != key)
        {
            var order = SeededShuffle.Permutation(prompts.Count, seed * 1_000_003L + epoch);
            int chunk = round * accumulation + micro;
            rollout?.Dispose();
            rollout = Generate(order.Skip(chunk * promptsPerBatch).Take(promptsPerBatch).ToArray(), Mix(seed, epoch, round, micro)) with { Key = key };
            kept[micro] = rollout;
        }
        return rollout.ToBatch();
    }

    /// <summary>Greedy completions of the first <paramref name="limit"/> prompts, scored: the held-out mean reward and one sample.</summary>
    public (double MeanReward, int Count, CompletionSample? Sample) GreedyReward(CausalLM model, int limit)
    {
        var picked = prompts.Take(limit).ToList();
        var sums = new List<double>();
        CompletionSample? sample = null;
        foreach (var chunk in picked.Chunk(Math.Max(promptsPerBatch * settings.NumGenerations, 1)))
        {
            var options = new GenerationOptions { MaxNewTokens = settings.MaxCompletionLength, EosTokenIds = eosIds };
            var generated = BatchGenerator.Generate(model, chunk.Select(p => (IReadOnlyList<long>)PromptIds(p)).ToArray(), options);
            var inputs = chunk.Select((p, r) => Input(p, generated[r].Ids)).ToArray();
            var perFunction = rewards.Functions.Select(f => f.Score(inputs)).ToArray();
            var total = RewardFunctions.Weighted(perFunction, rewards.Weights);
            sums.AddRange(total);
            sample ??= new CompletionSample(inputs[0].Prompt, inputs[0].Completion, total[0], 0,
                rewards.Functions.Select((f, i) => KeyValuePair.Create(f.Name, perFunction[i][0])).ToDictionary());
        }
        return (sums.Count == 0 ? 0 : sums.Average(), sums.Count, sample);
    }

    public void SaveState(string checkpointDir)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var slots = new JsonArray();
        for (int micro = 0; micro < kept.Length; micro++)
        {
            if (kept[micro] is not { Key: { } key } r) { slots.Add(null); continue; }
            slots.Add(new JsonObject
            {
                ["epoch"] = key.Epoch, ["round"] = key.Round, ["micro"] = key.Micro,
                ["figures"] = new JsonObject(r.Data.Figures.Select(f => KeyValuePair.Create(f.Key, (JsonNode?)f.Value))),
                ["masked"] = r.Inputs.AttentionMask is not null,
            });
            void Put(string name, Tensor? t) { if (t is not null) tensors.Add(KeyValuePair.Create($"{micro}.{name}", t)); }
            Put("input_ids", r.Inputs.InputIds);
            Put("attention_mask", r.Inputs.AttentionMask);
            Put("labels", r.Labels);
            Put("advantages", r.Data.Advantages);
            Put("old_logps", r.Data.OldLogProbs);
            Put("ref_logps", r.Data.RefLogProbs);
        }
        if (tensors.Count == 0) return;
        SafeTensorsWriter.Save(Path.Combine(checkpointDir, StateFile), tensors.OrderBy(t => t.Key, StringComparer.Ordinal),
            new Dictionary<string, string> { ["slots"] = slots.ToJsonString() });
    }

    public void RestoreState(string checkpointDir)
    {
        var path = Path.Combine(checkpointDir, StateFile);
        foreach (var r in kept) r?.Dispose();
        Array.Clear(kept);
        if (!File.Exists(path)) return;
        using var file = SafeTensorsCheckpoint.Open(path);
        var slots = JsonNode.Parse(SafeTensorsHeader.Read(path).Metadata["slots"])!.AsArray();
        for (int micro = 0; micro < Math.Min(slots.Count, kept.Length); micro++)
        {
            if (slots[micro] is not JsonObject slot) continue;
            Tensor? Get(string name) => file.Names.Contains($"{micro}.{name}") ? file.Load($"{micro}.{name}") : null;
            var figures = slot["figures"]!.AsObject().ToDictionary(f => f.Key, f => f.Value!.GetValue<double>());
            kept[micro] = new Rollout(new ForwardBatch(Get("input_ids")!, Get("attention_mask")), Get("labels")!,
                new RolloutData(Get("advantages")!, Get("old_logps"), Get("ref_logps"), figures))
            {
                Key = (slot["epoch"]!.GetValue<int>(), slot["round"]!.GetValue<int>(), slot["micro"]!.GetValue<int>()),
            }.Kept();
        }
    }

    /// <summary>Samples G completions for each prompt, scores them and builds the batch (host tensors).</summary>
    private Rollout Generate(int[] picked, ulong batchSeed)
    {
        var model = policy ?? throw new InvalidOperationException("GRPO rollouts need the policy: call Attach first");
        int g = settings.NumGenerations;
        var rows = picked.SelectMany(p => Enumerable.Repeat(prompts[p], g)).ToArray();
        var promptIds = rows.Select(PromptIds).ToArray();
        // One options object (so one random generator) per completion, seeded from its position in training.
        var options = rows.Select((_, r) => new GenerationOptions
        {
            MaxNewTokens = settings.MaxCompletionLength, Temperature = settings.Temperature, TopP = settings.TopP,
            TopK = settings.TopK > 0 ? settings.TopK : null, MinP = settings.MinP, RepetitionPenalty = settings.RepetitionPenalty,
            EosTokenIds = eosIds, Seed = (long)(Mix(batchSeed, r, 0, 0) >> 1),
        }).ToArray();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var generated = BatchGenerator.Generate(model, promptIds.Select(p => (IReadOnlyList<long>)p).ToArray(), options, null,
                rows.Select(_ => CancellationToken.None).ToArray());
            var inputs = rows.Select((p, r) => Input(p, generated[r].Ids)).ToArray();
            var perFunction = rewards.Functions.Select(f => f.Score(inputs)).ToArray();
            foreach (var (scores, f) in perFunction.Zip(rewards.Functions))
                if (scores.Length != rows.Length) throw new InvalidOperationException($"reward {f.Name} gave {scores.Length} scores for {rows.Length} completions");
            var total = RewardFunctions.Weighted(perFunction, rewards.Weights);
            var advantages = GrpoLoss.Advantages(total, g, settings.ScaleRewards);
            var truncated = generated.Select(s => s.Finish != FinishReason.Stop).ToArray();
            var (inputsBatch, labels) = BuildRows(promptIds, generated.Select(s => s.Ids).ToArray(), truncated);

            Tensor? old = null, reference = null;
            if (settings.NumIterations > 1) old = LogProbs(model, inputsBatch, labels);
            if (settings.Beta != 0)
                reference = frozenReference is not null ? LogProbs(frozenReference, inputsBatch, labels)
                    : PreferenceObjective.WithAdaptersOff(model, () => LogProbs(model, inputsBatch, labels));

            var figures = Figures(perFunction, total, advantages, generated.Select(s => s.Ids.Count).ToArray(), truncated);
            LastSamples = Enumerable.Range(0, Math.Min(samplesToKeep, rows.Length)).Select(r => new CompletionSample(inputs[r].Prompt, inputs[r].Completion,
                total[r], advantages.Advantages[r], rewards.Functions.Select((f, i) => KeyValuePair.Create(f.Name, perFunction[i][r])).ToDictionary())).ToArray();
            return new Rollout(inputsBatch, labels, new RolloutData(tensor(advantages.Advantages.Select(a => (float)a).ToArray()), old, reference, figures)).Kept();
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    private long[] PromptIds(PromptExample p)
    {
        var ids = p.PromptIds.Select(i => (long)i);
        if (settings.MaxPromptLength is { } max && p.PromptIds.Length > max) ids = ids.Skip(p.PromptIds.Length - max);
        return ids.ToArray();
    }

    private RewardInput Input(PromptExample p, IReadOnlyList<long> completion) =>
        new(p.PromptText, tokenizer.Decode(completion.Select(i => (int)i), skipSpecialTokens: true), completion.Count, p.RowJson);

    /// <summary>Rows prompt ++ completion, right-padded; labels are the completion tokens (none for a masked truncated one).</summary>
    private (ForwardBatch Inputs, Tensor Labels) BuildRows(long[][] promptIds, IReadOnlyList<long>[] completions, bool[] truncated)
    {
        int rows = promptIds.Length, width = Enumerable.Range(0, rows).Max(r => promptIds[r].Length + completions[r].Count);
        var ids = new long[rows * width];
        var labels = new long[rows * width];
        var mask = new long[rows * width];
        for (int r = 0; r < rows; r++)
        {
            bool trained = !(settings.MaskTruncatedCompletions && truncated[r]);
            for (int t = 0; t < width; t++)
            {
                int i = r * width + t, c = t - promptIds[r].Length;
                bool inPrompt = c < 0, inCompletion = c >= 0 && c < completions[r].Count;
                ids[i] = inPrompt ? promptIds[r][t] : inCompletion ? completions[r][c] : padId;
                labels[i] = inCompletion && trained ? ids[i] : TokenLabels.IgnoreIndex;
                mask[i] = inPrompt || inCompletion ? 1 : 0;
            }
        }
        long[] shape = [rows, width];
        // Rows of equal length need no mask: attention then takes the causal fast path.
        var maskTensor = mask.All(m => m == 1) ? null : tensor(mask, shape);
        return (new ForwardBatch(tensor(ids, shape), maskTensor), tensor(labels, shape));
    }

    /// <summary>Per-token log-probs (B, T-1) of the labelled tokens at the sampling temperature, without gradient, on the host.</summary>
    private Tensor LogProbs(CausalLM model, ForwardBatch inputs, Tensor labels)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = model.Device;
        var logits = model.Forward(new ForwardBatch(inputs.InputIds.to(device), inputs.AttentionMask?.to(device)));
        return GrpoObjective.TokenLogProbs(logits, labels.to(device), settings.Temperature).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>TRL's rollout metrics: rewards per function and in total, zero-std groups, completion lengths, truncations.</summary>
    private IReadOnlyDictionary<string, double> Figures(double[][] perFunction, double[] total, GroupAdvantages advantages, int[] lengths, bool[] truncated)
    {
        var figures = new Dictionary<string, double>
        {
            ["reward"] = total.Average(),
            ["reward_std"] = advantages.GroupStds.Average(),
            ["frac_reward_zero_std"] = advantages.FractionZeroStd,
            ["completions/mean_length"] = lengths.Average(),
            ["completions/min_length"] = lengths.Min(),
            ["completions/max_length"] = lengths.Max(),
            ["completions/clipped_ratio"] = truncated.Count(t => t) / (double)truncated.Length,
        };
        for (int f = 0; f < perFunction.Length; f++)
        {
            var applied = perFunction[f].Where(v => !double.IsNaN(v)).ToArray();
            if (applied.Length == 0) continue;
            double mean = applied.Average();
            figures[$"rewards/{rewards.Functions[f].Name}/mean"] = mean;
            figures[$"rewards/{rewards.Functions[f].Name}/std"] = applied.Length < 2 ? 0 : Math.Sqrt(applied.Sum(v => (v - mean) * (v - mean)) / (applied.Length - 1));
        }
        return figures;
    }

    /// <summary>SplitMix64 over the parts: independent, reproducible seeds per (run seed, epoch, round, micro-batch) and per row.</summary>
    private static ulong Mix(long a, long b, long c, long d) => Mix((ulong)a, b, c, d);

    private static ulong Mix(ulong a, long b, long c, long d)
    {
        ulong state = a;
        foreach (var part in new[] { (ulong)b, (ulong)c, (ulong)d })
        {
            state += 0x9E3779B97F4A7C15UL ^ part;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            state = z ^ (z >> 31);
        }
        return state;
    }

    /// <summary>A generated micro-batch on the host; handed out as copies because the trainer disposes what it gets.</summary>
    private sealed record Rollout(ForwardBatch Inputs, Tensor Labels, RolloutData Data) : IDisposable
    {
        public (int Epoch, int Round, int Micro)? Key { get; init; }

        /// <summary>Takes the tensors out of any dispose scope of the caller: a kept rollout lives until it is replaced.</summary>
        public Rollout Kept()
        {
            foreach (var t in new[] { Inputs.InputIds, Inputs.AttentionMask, Labels, Data.Advantages, Data.OldLogProbs, Data.RefLogProbs })
                t?.DetachFromDisposeScope();
            return this;
        }

        public LabeledBatch ToBatch() =>
            new(new ForwardBatch(Inputs.InputIds.clone(), Inputs.AttentionMask?.clone()), Labels.clone(), Rollout: Data.Copy());

        public void Dispose()
        {
            Inputs.InputIds.Dispose();
            Inputs.AttentionMask?.Dispose();
            Labels.Dispose();
            Data.Dispose();
        }
    }
}

/// <summary>
/// GRPO as a training objective: the policy's per-token log-probs of the sampled completions (at the sampling
/// temperature) against the rollout's advantages, old-policy and reference log-probs (<see cref="GrpoLoss"/>).
/// Units are completions, or completion tokens for dapo, so the trainer's step normalisation gives TRL's loss.
/// </summary>
public sealed class GrpoObjective(GrpoSettings settings) : ITrainingObjective
{
    public long Units(LabeledBatch batch) => settings.LossType == Config.GrpoLossType.Dapo ? batch.TrainedTokens : batch.Labels.shape[0];

    public ObjectiveOutput Compute(CausalLM model, LabeledBatch batch)
    {
        using var scope = NewDisposeScope();
        var rollout = batch.Rollout ?? throw new InvalidOperationException("GRPO batches carry their rollout");
        var logits = model.Forward(batch.Inputs);
        var logProbs = TokenLogProbs(logits, batch.Labels, settings.Temperature);
        var mask = batch.Labels[.., 1..].ne(TokenLabels.IgnoreIndex).to(ScalarType.Float32);
        var output = GrpoLoss.Compute(logProbs, settings.NumIterations > 1 ? rollout.OldLogProbs : null, rollout.RefLogProbs, rollout.Advantages, mask, settings);
        var metrics = output.Metrics.ToDictionary(m => m.Key, m => m.Value.MoveToOuterDisposeScope());
        foreach (var (name, value) in rollout.Figures) metrics[name] = tensor((float)value).MoveToOuterDisposeScope();
        return new ObjectiveOutput(output.LossSum.MoveToOuterDisposeScope(), metrics);
    }

    /// <summary>log softmax(logits / temperature) at the labelled tokens, (B, T-1), 0 elsewhere: TRL's _get_per_token_logps.</summary>
    public static Tensor TokenLogProbs(Tensor logits, Tensor labels, double temperature) =>
        CausalLmLoss.TokenLogProbs(temperature == 1.0 ? logits : logits / temperature, labels);
}
