using SharpTune.Config;
using SharpTune.Distributed;

namespace SharpTune.Tests.Distributed;

/// <summary>
/// offload_optimizer: cpu — the keys that ask for it (SharpTune's own and DeepSpeed's), FSDP's parameter offload refused
/// as something else, and the CPU run where it changes nothing (said once, same weights). The GPU path (state and step on
/// the host, parameters on the GPU) runs in bench/gpu/nccl_check.sh.
/// </summary>
public sealed class OffloadOptimizerTests
{
    private static TrainConfig Load(string yaml)
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: completion\n" + yaml);
        return ConfigLoader.Load(path, [], _ => { });
    }

    [Fact]
    public void OffloadComesFromItsOwnKeyOrFromDeepSpeed()
    {
        Assert.False(DistributedSettings.From(Load("")).OffloadOptimizer);
        Assert.Equal(OptimizerOffload.Cpu, Load("offload_optimizer: cpu").OffloadOptimizer);
        Assert.True(DistributedSettings.From(Load("offload_optimizer: cpu")).OffloadOptimizer);
        Assert.False(DistributedSettings.From(Load("offload_optimizer: none")).OffloadOptimizer);
        Assert.True(DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    stage: 2\n    offload_optimizer: {device: cpu, pin_memory: true}")).OffloadOptimizer);
        Assert.False(DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    stage: 2\n    offload_optimizer: {device: none}")).OffloadOptimizer);
        Assert.Contains("offload_optimizer", Assert.ThrowsAny<Exception>(() => Load("offload_optimizer: nvme")).Message);
        Assert.Contains("offload_optimizer.device nvme", Assert.Throws<InvalidInputException>(() =>
            DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    offload_optimizer: {device: nvme}"))).Message);
    }

    [Theory]
    [InlineData("fsdp: [shard_grad_op, offload]", "fsdp: offload")]
    [InlineData("fsdp: shard_grad_op offload auto_wrap", "fsdp: offload")]
    [InlineData("fsdp_config:\n  offload_params: true", "fsdp_config.offload_params")]
    public void FsdpParameterOffloadIsRefusedAsNotTheOptimizerOffload(string yaml, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => DistributedSettings.From(Load(yaml)));
        Assert.Contains(expected, e.Message);
        Assert.Contains("offload_optimizer", e.Message);
    }

    [Fact]
    public void OnACpuRunOffloadIsSaidOnceAndChangesNothing()
    {
        var dir = TestPaths.TempDir();
        var config = Path.Combine(dir, "config.yaml");
        File.WriteAllText(config, $"""
            base_model: {Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat")}
            datasets:
              - path: {Path.Combine(TestPaths.RepoRoot, "examples", "data", "chat.jsonl")}
                type: chat_template
            val_set_size: 0
            sequence_len: 64
            excess_length_strategy: truncate
            micro_batch_size: 2
            max_steps: 3
            learning_rate: 2e-3
            bf16: false
            device: cpu
            seed: 3
            """);
        var plain = MpiRun.Single("train", config, "--set", $"output_dir={dir}/plain");
        Assert.True(plain.Code == 0, plain.Err + plain.Out);
        var offloaded = MpiRun.Single("train", config, "--set", $"output_dir={dir}/offload", "--set", "offload_optimizer=cpu");
        Assert.True(offloaded.Code == 0, offloaded.Err + offloaded.Out);
        Assert.Single(offloaded.Out.Split('\n'), l => l.Contains("offload_optimizer: cpu on") && l.Contains("same as no offload"));
        Assert.DoesNotContain("offload_optimizer", plain.Out);
        Assert.Equal(0.0, MpiRun.MaxAbsDiff(Path.Combine(dir, "plain", "model.safetensors"), Path.Combine(dir, "offload", "model.safetensors")));
    }
}
