namespace SharpTune.Distributed;

/// <summary>
/// How much of the training state each rank keeps (DeepSpeed's ZeRO stages). Every stage reduces the same gradient sums
/// and takes the same optimizer step; they differ only in what is kept where.
/// </summary>
public enum ZeroStage
{
    /// <summary>Data parallel (DDP): every rank holds the whole model, all gradients and the whole optimizer state.</summary>
    None = 0,
    /// <summary>ZeRO-1: the optimizer state is partitioned; each rank updates its own parameters, then all gather them.</summary>
    OptimizerState = 1,
    /// <summary>ZeRO-2: the reduced gradients are partitioned too (each rank keeps only the gradients it updates).</summary>
    Gradients = 2,
    /// <summary>
    /// ZeRO-3 / FSDP full_shard: the parameters are partitioned too; each group (decoder layer, embedding, final norm,
    /// lm_head) is gathered around its forward and again for its backward, then freed (see ParameterShards).
    /// </summary>
    Parameters = 3,
}
