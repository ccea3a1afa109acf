namespace SharpTune.Distributed;

/// <summary>
/// What the launcher told this process before MPI starts: mpirun (OMPI_COMM_WORLD_*), MPICH/Intel MPI's Hydra (PMI_*,
/// MPI_LOCALRANKID), PMIx (PMIX_RANK) and srun (SLURM_*). Read from the environment only: it decides whether to start
/// MPI at all and which GPU this rank takes; MPI itself then confirms rank and size.
/// </summary>
public sealed record LaunchEnvironment(int Rank, int WorldSize, int LocalRank, int LocalSize, string Launcher)
{
    public bool IsDistributed => WorldSize > 1;

    public static LaunchEnvironment Read(Func<string, string?>? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable;
        int? Int(params string[] names)
        {
            foreach (var name in names)
                if (int.TryParse(variable(name), out var value)) return value;
            return null;
        }
        if (Int("OMPI_COMM_WORLD_SIZE") is { } ompiSize)
            return new(Int("OMPI_COMM_WORLD_RANK") ?? 0, ompiSize, Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, Int("OMPI_COMM_WORLD_LOCAL_SIZE") ?? ompiSize, "mpirun (OpenMPI)");
        // srun sets SLURM_* for every task and PMI_*/PMIX_* per its --mpi plugin; the task count comes from SLURM.
        if (Int("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") is { } slurmSize && variable("SLURM_PROCID") is not null)
            return new(Int("SLURM_PROCID") ?? 0, slurmSize, Int("SLURM_LOCALID") ?? 0, LocalTasks(variable("SLURM_STEP_TASKS_PER_NODE") ?? variable("SLURM_TASKS_PER_NODE")) ?? slurmSize, "srun (SLURM)");
        if (Int("PMI_SIZE") is { } pmiSize)
            return new(Int("PMI_RANK") ?? 0, pmiSize, Int("MPI_LOCALRANKID", "PMI_LOCAL_RANK") ?? 0, Int("MPI_LOCALNRANKS", "PMI_LOCAL_SIZE") ?? pmiSize, "PMI (MPICH Hydra)");
        if (Int("PMIX_SIZE") is { } pmixSize)
            return new(Int("PMIX_RANK") ?? 0, pmixSize, Int("PMIX_LOCAL_RANK", "LOCAL_RANK") ?? 0, Int("PMIX_LOCAL_SIZE", "LOCAL_WORLD_SIZE") ?? pmixSize, "PMIx");
        return new(0, 1, 0, 1, "single process");
    }

    /// <summary>SLURM_TASKS_PER_NODE "4(x2),3" → the first node's count (every node of a homogeneous step).</summary>
    private static int? LocalTasks(string? perNode)
    {
        if (string.IsNullOrEmpty(perNode)) return null;
        var first = perNode.Split(',')[0];
        int paren = first.IndexOf('(');
        return int.TryParse(paren < 0 ? first : first[..paren], out var n) ? n : null;
    }
}
