
namespace SharpTune.Tests.Distributed;

/// <summary>
/// Multi-process training on loopback against one process over the same global batches: the tiny chat model, 6 steps,
/// rows of uneven length padded per batch (ranks hold different token counts), full fine-tune and LoRA. The reference
/// runs with gradient_accumulation_steps × world, which covers exactly the micro-batches the ranks share out.
/// </summary>
public sealed class DataParallelTrainingTests
{
    private const double Tolerance = 1e-6;

    private static string TinyChat => Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");

    private static string WriteConfig(string dir, string extra, string baseModel)
    {
        var path = Path.Combine(dir, "config.yaml");
        File.WriteAllText(path, $"""
            base_model: {baseModel}
            datasets:
              - path: {Path.Combine(TestPaths.RepoRoot, "examples", "data", "chat.jsonl")}
                type: chat_template
            val_set_size: 0
            sequence_len: 96
            excess_length_strategy: truncate
            sample_packing: false
            micro_batch_size: 2
            max_steps: 6
            learning_rate: 2e-3
            lr_scheduler: cosine
            warmup_steps: 2
            weight_decay: 0.01
            bf16: false
            device: cpu
            logging_steps: 1
            seed: 7
            {extra}
            """);
        return path;
    }

    private const string Lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0\nlora_target_linear: true";

    /// <summary>Trains with <paramref name="ranks"/> ranks and in one process; returns the max abs difference of the saved weights.</summary>
    private static double DistributedVersusSingle(int ranks, int accumulation, string extra, string weights, string? baseModel = null) =>
        DistributedVersusSingleWithOutput(ranks, accumulation, extra, weights, baseModel).Difference;

    /// <summary>As <see cref="DistributedVersusSingle"/>, with rank 0's console output and the folder holding multi/ and single/.</summary>
    private static (double Difference, string MultiOutput, string Dir) DistributedVersusSingleWithOutput(int ranks, int accumulation, string extra, string weights, string? baseModel = null)
    {
        var dir = TestPaths.TempDir();
        var config = WriteConfig(dir, extra, baseModel ?? TinyChat);
        var multi = MpiRun.Run(ranks, "train", config, "--set", $"output_dir={dir}/multi", "--set", $"gradient_accumulation_steps={accumulation}");
        Assert.True(multi.Code == 0, multi.Err + multi.Out);
        Assert.Contains($"data parallel: {ranks} ranks", multi.Out);
        Assert.Contains("done: 6 steps", multi.Out);
        var single = MpiRun.Single("train", config, "--set", $"output_dir={dir}/single", "--set", $"gradient_accumulation_steps={accumulation * ranks}");
        Assert.True(single.Code == 0, single.Err + single.Out);
        // The logged losses are the whole job's, so they equal the single process's too.
        Assert.Equal(LoggedLosses(Path.Combine(dir, "single")), LoggedLosses(Path.Combine(dir, "multi")), (x, y) => Math.Abs(x - y) < 1e-5);
        return (MpiRun.MaxAbsDiff(Path.Combine(dir, "multi", weights), Path.Combine(dir, "single", weights)), multi.Out, dir);
    }

    internal static double[] LoggedLosses(string outputDir) =>
        File.ReadAllLines(Path.Combine(outputDir, "metrics.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .Where(j => j["loss"] is not null).Select(j => j["loss"]!.GetValue<double>()).ToArray();

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(2, 2)]
    public void DdpFullFineTuneEqualsOneProcess(int ranks, int accumulation) =>
        Assert.InRange(DistributedVersusSingle(ranks, accumulation, "", "model.safetensors"), 0, Tolerance);

    [Fact]
    public void DdpLoraEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(3, 1, Lora, "adapter_model.safetensors"), 0, Tolerance);

    /// <summary>
    /// The ranks share the 4 micro-batches as (m0+m2)+(m1+m3), one process sums ((m0+m1)+m2)+m3; in float32 that differed
    /// by 1.5–2.8e-6 after AdamW's first steps on the zero-initialised lora_B. Adapter runs sum in float64
    /// (Training.GradientSums), so the two are bit-identical.
    /// </summary>
    [Fact]
    public void DdpLoraWithAccumulationIsBitIdenticalToOneProcess() =>
        Assert.Equal(0.0, DistributedVersusSingle(2, 2, Lora, "adapter_model.safetensors"));

    [Fact]
    public void Zero1FromDeepSpeedJsonFileEqualsOneProcess()
    {
        var json = Path.Combine(TestPaths.TempDir(), "zero1.json");
        File.WriteAllText(json, """{"zero_optimization": {"stage": 1, "overlap_comm": true}, "bf16": {"enabled": "auto"}, "gradient_accumulation_steps": "auto", "train_micro_batch_size_per_gpu": "auto"}""");
        Assert.InRange(DistributedVersusSingle(2, 1, $"deepspeed: {json}", "model.safetensors"), 0, Tolerance);
    }

    [Fact]
    public void Zero2InlineDeepSpeedObjectEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(3, 2, "deepspeed:\n  zero_optimization:\n    stage: 2\n    reduce_bucket_size: 20000", "model.safetensors"), 0, Tolerance);

    [Fact]
    public void Zero2LoraViaFsdpShardGradOpEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(2, 1, Lora + "\nfsdp: [shard_grad_op, auto_wrap]\nfsdp_version: 2", "adapter_model.safetensors"), 0, Tolerance);

    /// <summary>ZeRO-3: parameters sharded as whole parameters per group, gathered per decoder layer (measured 1.2e-7, 2 ranks).</summary>
    [Theory]
    [InlineData(2, 1, "deepspeed:\n  zero_optimization:\n    stage: 3")]
    [InlineData(3, 2, "fsdp: [full_shard, auto_wrap]\nfsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD")]
    public void Zero3FullFineTuneEqualsOneProcess(int ranks, int accumulation, string keys) =>
        Assert.InRange(DistributedVersusSingle(ranks, accumulation, keys, "model.safetensors"), 0, Tolerance);

    /// <summary>
    /// ZeRO-3 reduces each group's gradients in windows of reduce_bucket_size elements: 3000 is smaller than most of
    /// tiny-chat's parameters and than a group's buffer, so windows split parameters and straddle the owners' parts.
    /// </summary>
    [Fact]
    public void Zero3WithGradientReductionInSmallWindowsEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(3, 1, "deepspeed:\n  zero_optimization:\n    stage: 3\n    reduce_bucket_size: 3000", "model.safetensors"), 0, Tolerance);

    /// <summary>ZeRO-3 LoRA: the frozen base sharded, the adapters replicated and all-reduced (measured 2.4e-7, 3 ranks × accumulation 2).</summary>
    [Fact]
    public void Zero3LoraEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(3, 2, Lora + "\nfsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true", "adapter_model.safetensors"), 0, Tolerance);

    private const string Qlora = "adapter: qlora\nload_in_4bit: true\nbnb_4bit_quant_type: nf4\nbnb_4bit_use_double_quant: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0\nlora_target_linear: true";

    /// <summary>
    /// ZeRO-3 QLoRA: the NF4 + double-quant base (packed codes, absmax codes, nested absmax) sharded by bytes and
    /// broadcast per group for its forward and its recompute, the adapters replicated and all-reduced; the start-up line
    /// says how much of the quantized base the rank keeps; merge_lora's merged model (the base gathered and dequantized
    /// on rank 0) equals one process's too. tiny-chat's linear weights (128 × 128, 64 × 128, 384 × 128) are whole
    /// 64-element blocks.
    /// </summary>
    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    public void Zero3QloraEqualsOneProcess(int ranks, int accumulation)
    {
        var (difference, multi, dir) = DistributedVersusSingleWithOutput(ranks, accumulation, Qlora + "\nmerge_lora: true\ndeepspeed:\n  zero_optimization:\n    stage: 3", "adapter_model.safetensors");
        // The console wraps long lines at its width.
        var line = System.Text.RegularExpressions.Regex.Match(System.Text.RegularExpressions.Regex.Replace(multi, @"\s+", " "),
            @"ZeRO-3: this rank keeps [\d,]+ of [\d,]+ parameters and (?<owned>[\d,]+) of (?<total>[\d,]+) bytes of quantized base between uses");
        Assert.True(line.Success, multi);
        long owned = Digits(line.Groups["owned"].Value), total = Digits(line.Groups["total"].Value);
        // Rank 0 keeps a share of the base, not all of it (the rest lives on the other ranks).
        Assert.InRange(owned, 1, total - 1);
        Assert.InRange(difference, 0, Tolerance);
        Assert.InRange(MpiRun.MaxAbsDiff(Path.Combine(dir, "multi", "merged", "model.safetensors"), Path.Combine(dir, "single", "merged", "model.safetensors")), 0, Tolerance);
    }

    private static long Digits(string grouped) => long.Parse(System.Text.RegularExpressions.Regex.Replace(grouped, @"\D", ""));

    /// <summary>ZeRO-3 over an 8-bit base (int8 codes and row scales sharded), LoRA adapters on it.</summary>
    [Fact]
    public void Zero3EightBitLoraEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(2, 1, Lora + "\nload_in_8bit: true\nfsdp: [full_shard, auto_wrap]", "adapter_model.safetensors"), 0, Tolerance);

    /// <summary>
    /// ZeRO-3 on an untied model, so the lm_head's own group is gathered, trained and sharded like a decoder layer's
    /// (tiny-chat ties lm_head to the embeddings, which skips that group). The clip norm is taken over the owners'
    /// per-parameter norms in one process's order: a root of the ranks' summed squares was one ulp off at step 2, which
    /// AdamW carried into model.embed_tokens.weight as 2.79e-6.
    /// </summary>
    [Fact]
    public void Zero3FullFineTuneOfUntiedModelEqualsOneProcess() =>
        Assert.InRange(DistributedVersusSingle(2, 1, "deepspeed:\n  zero_optimization:\n    stage: 3", "model.safetensors", UntiedTinyChat()), 0, Tolerance);

    /// <summary>
    /// ZeRO-3 streams the consolidated model (rank 0 writes each parameter as it is gathered from its owner): the final
    /// model and the checkpoint's are byte for byte what a one-process save of the same weights writes, and the
    /// checkpoint keeps its per-rank optimizer shards and zero_shards.json.
    /// </summary>
    [Fact]
    public void Zero3StreamedSaveEqualsAOneProcessSaveByteForByte()
    {
        var dir = TestPaths.TempDir();
        var config = WriteConfig(dir, "deepspeed:\n  zero_optimization:\n    stage: 3\nsave_steps: 6", UntiedTinyChat());
        var run = MpiRun.Run(2, "train", config, "--set", $"output_dir={dir}/multi");
        Assert.True(run.Code == 0, run.Err + run.Out);
        var output = Path.Combine(dir, "multi");
        var checkpoint = Path.Combine(output, "checkpoint-6");
        var resaved = Path.Combine(dir, "resaved");
        using (var model = SharpTune.Modeling.ModelLoader.Load(output))
        {
            Assert.Contains(model.named_parameters(), p => p.name == "lm_head.weight");
            SharpTune.Modeling.ModelIO.Save(model, resaved);
        }
        foreach (var file in new[] { "model.safetensors", "config.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(resaved, file)), File.ReadAllBytes(Path.Combine(output, file)));
            Assert.Equal(File.ReadAllBytes(Path.Combine(resaved, file)), File.ReadAllBytes(Path.Combine(checkpoint, file)));
        }
        var shards = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "zero_shards.json")))!;
        Assert.Equal(3, shards["zero_stage"]!.GetValue<int>());
        Assert.Equal(2, shards["world_size"]!.GetValue<int>());
        using var weights = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(output, "model.safetensors"));
        Assert.Equal(weights.Names.Order(StringComparer.Ordinal), shards["owners"]!.AsObject().Select(kv => kv.Key).Order(StringComparer.Ordinal));
        var optimizerKeys = new[] { "optimizer.safetensors", "optimizer-rank-1.safetensors" }
            .SelectMany(f => { using var o = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(checkpoint, f)); return o.Names.ToList(); }).ToList();
        Assert.Equal(weights.Names.SelectMany(n => new[] { n + ".exp_avg", n + ".exp_avg_sq" }).Order(StringComparer.Ordinal), optimizerKeys.Order(StringComparer.Ordinal));
    }

    /// <summary>tiny-chat with tie_word_embeddings false and its own lm_head.weight (the embeddings plus a seeded perturbation).</summary>
    private static string UntiedTinyChat()
    {
        var dir = Path.Combine(TestPaths.TempDir(), "tiny-chat-untied");
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.GetFiles(TinyChat).Where(f => Path.GetFileName(f) != "model.safetensors"))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        config["tie_word_embeddings"] = false;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var tied = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(TinyChat, "model.safetensors"));
        var tensors = tied.Names.ToDictionary(n => n, n => tied.Load(n));
        Assert.DoesNotContain("lm_head.weight", tensors.Keys);
        var embeddings = tensors["model.embed_tokens.weight"];
        var generator = new TorchSharp.torch.Generator(11);
        tensors["lm_head.weight"] = embeddings + 0.02f * TorchSharp.torch.randn(embeddings.shape, generator: generator);
        SharpTune.SafeTensors.SafeTensorsWriter.Save(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }
}
