namespace SharpTune.Config;

// The allowed values of enum-typed keys: each member's snake_case name (AdamwTorchFused → adamw_torch_fused), plus the
// spellings its [Alias] lists. Training code maps the members straight to what they choose.

public enum AdapterType { Lora, Qlora }
public enum RlType { Dpo, Orpo, Simpo, Kto, Grpo }
public enum GrpoLossType { Grpo, Bnpo, DrGrpo, Dapo }
public enum ScaleRewardsMode { [Alias("true")] Group, Batch, [Alias("false")] None }
public enum AnswerExtraction { Auto, AnswerTag, Boxed, Hash, LastNumber, Full }
public enum LrSchedulerType { Cosine, Linear, Constant, ConstantWithWarmup, CosineWithMinLr }

public enum OptimizerType
{
    // Paging only moves memory; the update is the same AdamW.
    [Alias("paged_adamw_32bit")] AdamwTorch,
    AdamwTorchFused,
    AdamwHf,
    Adamw,
    Sgd,
    Adafactor,
    Lion,
    [Alias("adamw_bnb_8bit", "paged_adamw_8bit", "adamw_torch_8bit")] Adamw8bit,
    [RefusedValue("4-bit optimizer state is not implemented; use adamw_8bit (8-bit state, 2 bytes per parameter) or adamw_torch")] AdamwTorch4bit,
    Muon,
}

/// <summary>gradient_checkpointing: false, true, offload (checkpointed inputs in pinned host memory on CUDA), offload_disk (refused).</summary>
public enum GradientCheckpointingMode
{
    [Alias("no")] False,
    [Alias("yes")] True,
    [Alias("unsloth")] Offload,
    [RefusedValue("activations are not written to disk; use offload (pinned host memory) or true")] OffloadDisk,
}

public enum Bf16Mode { False, True, Auto, Full }
public enum QuantType4Bit { Nf4, Fp4 }
public enum ComputeDtype { Float32, Bfloat16, Float16 }
public enum ExcessLengthStrategy { Drop, Truncate }
/// <summary>transformers' hub_strategy: what is pushed to hub_model_id and when.</summary>
public enum HubStrategy { End, EverySave, Checkpoint, AllCheckpoints }
public enum OptimizerOffload { None, Cpu }
public enum TrainOnEos { All, Turn, Last, None }
public enum DpoLossType { Sigmoid, Ipo, Hinge }
public enum DatasetFileType { Json, Jsonl, Parquet, Csv, Text }
