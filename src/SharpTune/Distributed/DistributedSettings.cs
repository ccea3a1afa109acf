using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Config;

namespace SharpTune.Distributed;

/// <summary>
/// The multi-process settings of a run, from SharpTune's keys and the axolotl/HF ones that name the same things
/// (deepspeed, fsdp, fsdp_config). An option that cannot be honoured is refused with its name, never dropped.
/// </summary>
/// <param name="OffloadOptimizer">offload_optimizer: cpu — optimizer state and step on the host.</param>
public sealed record DistributedSettings(ZeroStage Stage, bool OffloadOptimizer, TimeSpan Timeout, double BucketCapMb)
{
    private static readonly string[] PerformanceOnly = ["overlap_comm", "contiguous_gradients", "reduce_scatter", "allgather_partitions", "round_robin_gradients", "pin_memory", "load_from_fp32_weights"];

    public static DistributedSettings From(TrainConfig config)
    {
        var stage = ZeroStage.None;
        bool offload = false;
        double bucketMb = config.DdpBucketCapMb;
        if (config.Deepspeed is { } deepspeed) (stage, offload, bucketMb) = FromDeepSpeed(deepspeed, config, bucketMb);
        if (config.Fsdp is { Count: > 0 } || config.FsdpConfig is not null)
        {
            if (config.Deepspeed is not null) throw new InvalidInputException("deepspeed and fsdp: give one of them");
            stage = FromFsdp(config.Fsdp ?? [], config.FsdpConfig);
        }
        if (config.OffloadOptimizer == OptimizerOffload.Cpu) offload = true;
        return new DistributedSettings(stage, offload, TimeSpan.FromSeconds(config.DdpTimeout), bucketMb);
    }

    private static (ZeroStage, bool, double) FromDeepSpeed(string value, TrainConfig config, double bucketMb)
    {
        string source = value.TrimStart().StartsWith('{') ? "deepspeed" : $"deepspeed: {value}";
        string text;
        if (value.TrimStart().StartsWith('{')) text = value;
        else if (File.Exists(value)) text = File.ReadAllText(value);
        else throw new InvalidInputException($"deepspeed: {value} is not a file; give a DeepSpeed JSON file or the object itself");
        JsonObject root;
        try { root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })?.AsObject() ?? throw new InvalidInputException($"{source}: not a JSON object"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new InvalidInputException($"{source}: not a JSON object ({e.Message})"); }
        var stage = ZeroStage.None;
        bool offload = false;
        foreach (var (key, node) in root)
        {
            switch (key)
            {
                case "zero_optimization":
                    foreach (var (zkey, znode) in node?.AsObject() ?? [])
                    {
                        switch (zkey)
                        {
                            case "stage":
                                int s = Int(znode, $"{source}: zero_optimization.stage");
                                stage = s switch
                                {
                                    0 => ZeroStage.None,
                                    1 => ZeroStage.OptimizerState,
                                    2 => ZeroStage.Gradients,
                                    3 => ZeroStage.Parameters,
                                    _ => throw new InvalidInputException($"{source}: zero_optimization.stage {s} is invalid; allowed: 0, 1, 2, 3"),
                                };
                                break;
                            case "offload_optimizer":
                                offload = OffloadDevice(znode, $"{source}: zero_optimization.offload_optimizer");
                                break;
                            case "offload_param":
                                if (OffloadDevice(znode, $"{source}: zero_optimization.offload_param"))
                                    throw new InvalidInputException($"{source}: zero_optimization.offload_param.device cpu (ZeRO-3 parameter offload) is not supported by this build; use none");
                                break;
                            case "reduce_bucket_size":
                                // DeepSpeed counts elements; the buckets here are float32.
                                bucketMb = AutoOr(znode, bucketMb, n => n * sizeof(float) / (1024.0 * 1024.0), $"{source}: zero_optimization.reduce_bucket_size");
                                break;
                            case "allgather_bucket_size":
                                break;   // the all-gather reuses the reduce buckets: same data, same sizes
                            case var k when PerformanceOnly.Contains(k):
                                break;   // scheduling knobs of DeepSpeed's CUDA streams; the result is the same either way
                            case "stage3_gather_16bit_weights_on_model_save" or "gather_16bit_weights_on_model_save":
                                break;   // the saved model is always the consolidated whole weights
                            case var k when k.StartsWith("stage3_", StringComparison.Ordinal) || k is "sub_group_size":
                                break;   // prefetch / persistence / live-parameter limits: when stage 3 gathers, not what it computes
                            default:
                                throw new InvalidInputException($"{source}: zero_optimization.{zkey} is not supported by this build");
                        }
                    }
                    break;
                case "bf16" or "fp16":
                    if (node?["enabled"] is { } enabled && enabled.ToString() != "auto")
                    {
                        bool on = enabled.GetValueKind() == JsonValueKind.True;
                        bool configOn = key == "fp16" ? config.Fp16 : config.Bf16 is not Bf16Mode.False;
                        if (on != configOn && !(key == "bf16" && config.Bf16 == Bf16Mode.Auto)) throw new InvalidInputException($"{source}: {key}.enabled {on.ToString().ToLowerInvariant()} disagrees with the config's {key}; use \"auto\" or set {key} in the config");
                    }
                    break;
                case "gradient_accumulation_steps":
                    Same(node, config.GradientAccumulationSteps, source, key);
                    break;
                case "train_micro_batch_size_per_gpu":
                    Same(node, config.MicroBatchSize, source, key);
                    break;
                case "gradient_clipping":
                    Same(node, config.MaxGradNorm, source, key);
                    break;
                case "train_batch_size" or "wall_clock_breakdown" or "steps_per_print" or "zero_allow_untested_optimizer" or "zero_force_ds_cpu_optimizer":
                    break;   // derived from the batch keys, or DeepSpeed's own logging / optimizer choice switches
                default:
                    throw new InvalidInputException($"{source}: {key} is not supported by this build; supported: zero_optimization, bf16, fp16, gradient_accumulation_steps, train_micro_batch_size_per_gpu, gradient_clipping, train_batch_size");
            }
        }
        return (stage, offload, bucketMb);
    }

    private static ZeroStage FromFsdp(IReadOnlyList<string> options, string? configJson)
    {
        var stage = ZeroStage.Gradients;   // FSDP always shards at least gradients and optimizer state
        // axolotl writes the list or one string: "full_shard auto_wrap".
        foreach (var option in options.SelectMany(o => o.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            switch (option.Trim().ToLowerInvariant())
            {
                case "full_shard": stage = ZeroStage.Parameters; break;
                case "hybrid_shard" or "hybrid_shard_zero2":
                    throw new InvalidInputException($"fsdp: {option} (sharding within a node, replicas across nodes) is not supported by this build; use full_shard, shard_grad_op or no_shard");
                case "shard_grad_op": stage = ZeroStage.Gradients; break;
                case "no_shard": stage = ZeroStage.None; break;
                case "offload":
                    // FSDP's CPUOffload moves the parameters and gradients to the host, not only the optimizer.
                    throw new InvalidInputException("fsdp: offload (FSDP parameter offload: parameters and gradients in host memory) is not supported by this build; use offload_optimizer: cpu (optimizer state and step in host memory)");
                case "auto_wrap": break;   // decoder layers are the unit of the reductions already
                default: throw new InvalidInputException($"fsdp: {option} is not supported; allowed: full_shard, shard_grad_op, no_shard, auto_wrap");
            }
        }
        if (configJson is null) return stage;
        foreach (var (rawKey, node) in JsonNode.Parse(configJson)!.AsObject())
        {
            string key = rawKey.StartsWith("fsdp_", StringComparison.Ordinal) ? rawKey["fsdp_".Length..] : rawKey;
            string text = node?.ToString() ?? "";
            switch (key)
            {
                case "sharding_strategy":
                    stage = text.ToUpperInvariant() switch
                    {
                        "FULL_SHARD" or "1" => ZeroStage.Parameters,
                        "SHARD_GRAD_OP" or "2" => ZeroStage.Gradients,
                        "NO_SHARD" or "3" => ZeroStage.None,
                        _ => throw new InvalidInputException($"fsdp_config.{rawKey}: {text} is not supported by this build; allowed: FULL_SHARD, SHARD_GRAD_OP, NO_SHARD"),
                    };
                    break;
                case "reshard_after_forward":
                    // FSDP2's spelling of full_shard (true) vs shard_grad_op (false).
                    stage = text switch
                    {
                        "true" => ZeroStage.Parameters,
                        "false" => ZeroStage.Gradients,
                        _ => throw new InvalidInputException($"fsdp_config.{rawKey}: {text} is not supported; allowed: true (ZeRO-3), false (ZeRO-2)"),
                    };
                    break;
                case "offload_params":
                    if (text == "true") throw new InvalidInputException($"fsdp_config.{rawKey}: true (parameter offload) is not supported by this build; use false, or deepspeed offload_optimizer.device cpu");
                    break;
                case "auto_wrap_policy" or "transformer_layer_cls_to_wrap" or "sync_module_states" or "use_orig_params" or "cpu_ram_efficient_loading" or "limit_all_gathers" or "forward_prefetch" or "backward_prefetch":
                    break;   // what SharpTune does anyway: decoder layers as units, rank 0's weights broadcast, weights loaded once
                case "state_dict_type":
                    if (text is not ("FULL_STATE_DICT" or "SHARDED_STATE_DICT"))
                        throw new InvalidInputException($"fsdp_config.{rawKey}: {text} is not supported; allowed: FULL_STATE_DICT, SHARDED_STATE_DICT");
                    break;   // the model is saved whole; the optimizer state per rank with consolidation metadata
                case "activation_checkpointing":
                    if (text == "true") throw new InvalidInputException($"fsdp_config.{rawKey}: set gradient_checkpointing: true instead (one key for it)");
                    break;
                default:
                    throw new InvalidInputException($"fsdp_config.{rawKey} is not supported by this build");
            }
        }
        return stage;
    }

    private static bool OffloadDevice(JsonNode? node, string where)
    {
        string device = node?["device"]?.ToString() ?? "none";
        foreach (var (k, _) in node?.AsObject() ?? [])
            if (k is not ("device" or "pin_memory" or "buffer_count" or "fast_init"))
                throw new InvalidInputException($"{where}.{k} is not supported by this build");
        return device switch
        {
            "cpu" => true,
            "none" => false,
            _ => throw new InvalidInputException($"{where}.device {device} is not supported; allowed: cpu, none"),
        };
    }

    private static int Int(JsonNode? node, string where) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) && d == Math.Floor(d) ? (int)d : throw new InvalidInputException($"{where}: {node?.ToJsonString()} is not an integer");

    private static double AutoOr(JsonNode? node, double current, Func<double, double> convert, string where) =>
        node?.ToString() == "auto" ? current
        : node is JsonValue v && v.TryGetValue<double>(out var d) && d > 0 ? convert(d)
        : throw new InvalidInputException($"{where}: {node?.ToJsonString()} is not a positive number or \"auto\"");

    private static void Same(JsonNode? node, double configValue, string source, string key)
    {
        if (node?.ToString() == "auto") return;
        if (node is JsonValue v && v.TryGetValue<double>(out var d) && Math.Abs(d - configValue) < 1e-12) return;
        throw new InvalidInputException($"{source}: {key} {node?.ToJsonString()} disagrees with the config ({configValue}); use \"auto\" (DeepSpeed's HF convention) or the same value");
    }
}
