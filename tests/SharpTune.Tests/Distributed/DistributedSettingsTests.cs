using SharpTune.Config;
using SharpTune.Distributed;

namespace SharpTune.Tests.Distributed;

/// <summary>Launcher variables, the deepspeed/fsdp mapping and its refusals, and the mpirun command line of `sharptune launch`.</summary>
public sealed class DistributedSettingsTests
{
    [Fact]
    public void RankWorldAndLocalRankComeFromEachLaunchersVariables()
    {
        LaunchEnvironment From(params (string, string)[] vars) => LaunchEnvironment.Read(name => vars.FirstOrDefault(v => v.Item1 == name).Item2);
        Assert.Equal(new LaunchEnvironment(3, 4, 1, 2, "mpirun (OpenMPI)"), From(("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("OMPI_COMM_WORLD_LOCAL_SIZE", "2")));
        Assert.Equal(new LaunchEnvironment(5, 8, 1, 4, "srun (SLURM)"), From(("SLURM_NTASKS", "8"), ("SLURM_PROCID", "5"), ("SLURM_LOCALID", "1"), ("SLURM_TASKS_PER_NODE", "4(x2)")));
        Assert.Equal(new LaunchEnvironment(2, 3, 0, 1, "PMI (MPICH Hydra)"), From(("PMI_SIZE", "3"), ("PMI_RANK", "2"), ("MPI_LOCALRANKID", "0"), ("MPI_LOCALNRANKS", "1")));
        Assert.False(From().IsDistributed);
    }

    private static TrainConfig Load(string yaml)
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: completion\n" + yaml);
        return ConfigLoader.Load(path, [], _ => { });
    }

    [Fact]
    public void DeepSpeedAndFsdpKeysMapToZeroStages()
    {
        Assert.Equal(ZeroStage.Gradients, DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    stage: 2\n    offload_optimizer: {device: cpu}")).Stage);
        Assert.True(DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    stage: 1\n    offload_optimizer: {device: cpu}")).OffloadOptimizer);
        Assert.Equal(ZeroStage.Gradients, DistributedSettings.From(Load("fsdp: [shard_grad_op, auto_wrap]\nfsdp_config:\n  fsdp_state_dict_type: FULL_STATE_DICT")).Stage);
        Assert.Equal(ZeroStage.None, DistributedSettings.From(Load("fsdp_config:\n  sharding_strategy: NO_SHARD")).Stage);
        Assert.Equal(ZeroStage.Parameters, DistributedSettings.From(Load("deepspeed:\n  zero_optimization:\n    stage: 3\n    stage3_gather_16bit_weights_on_model_save: true")).Stage);
        Assert.Equal(ZeroStage.Parameters, DistributedSettings.From(Load("fsdp: [full_shard, auto_wrap]")).Stage);
        Assert.Equal(ZeroStage.Parameters, DistributedSettings.From(Load("fsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD")).Stage);
        Assert.Equal(ZeroStage.Parameters, DistributedSettings.From(Load("fsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true")).Stage);
        var ddp = DistributedSettings.From(Load("ddp_timeout: 90\nddp_bucket_cap_mb: 4"));
        Assert.Equal((ZeroStage.None, 90.0, 4.0), (ddp.Stage, ddp.Timeout.TotalSeconds, ddp.BucketCapMb));
    }

    [Theory]
    [InlineData("deepspeed:\n  zero_optimization:\n    stage: 4", "zero_optimization.stage 4")]
    [InlineData("deepspeed:\n  zero_optimization:\n    stage: 2\n    offload_param: {device: cpu}", "offload_param")]
    [InlineData("deepspeed:\n  optimizer: {type: AdamW}", "optimizer is not supported")]
    [InlineData("deepspeed:\n  gradient_accumulation_steps: 8", "gradient_accumulation_steps 8 disagrees")]
    [InlineData("fsdp: [hybrid_shard, auto_wrap]", "fsdp: hybrid_shard")]
    [InlineData("fsdp_config:\n  fsdp_offload_params: true", "fsdp_config.fsdp_offload_params")]
    [InlineData("fsdp_config:\n  fsdp_mystery: 1", "fsdp_config.fsdp_mystery is not supported")]
    public void OptionsThatCannotBeHonouredAreRefusedByName(string yaml, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => DistributedSettings.From(Load(yaml)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LaunchSpellsOutMpirun()
    {
        var start = MpirunCommand.Build(4, "node1:2,node2:2", null, "/opt/sharptune", ["/x/c.yaml", "--set", "seed=1"]);
        var args = start.ArgumentList.ToList();
        Assert.Equal("mpirun", start.FileName);
        Assert.Equal(["-np", "4", "--host", "node1:2,node2:2"], args.SkipWhile(a => a != "-np").Take(4));
        Assert.Equal(["/opt/sharptune", "train", "/x/c.yaml", "--set", "seed=1"], args.TakeLast(5));
        Assert.Contains("--oversubscribe", MpirunCommand.Build(2, null, null, "s", []).ArgumentList);
        Assert.Contains("node1:x", Assert.Throws<InvalidInputException>(() => MpirunCommand.Build(2, "node1:x", null, "s", [])).Message);
        Assert.Throws<InvalidInputException>(() => MpirunCommand.Build(0, null, null, "s", []));
    }

    [Fact]
    public void PartitionCutsContiguousBalancedRuns()
    {
        Assert.Equal([0, 0, 1, 1], DataParallel.Partition([10, 10, 10, 10], 2));
        Assert.Equal([0, 1, 2], DataParallel.Partition([5, 5, 5], 3));
        Assert.Equal([0, 1, 1], DataParallel.Partition([100, 1, 1], 2));
    }
}
