using System.Diagnostics;

namespace SharpTune.Distributed;

/// <summary>
/// `sharptune launch`: the mpirun command line that starts N ranks of `sharptune train` on this node or on the given
/// hosts. MPI stays the launcher; this only spells its options out for the user.
/// </summary>
public static class MpirunCommand
{
    /// <param name="hosts">"h1:4,h2:4" (mpirun --host), or null.</param>
    /// <param name="hostfile">an OpenMPI hostfile, or null.</param>
    public static ProcessStartInfo Build(int nproc, string? hosts, string? hostfile, string sharptune, IEnumerable<string> trainArgs, string mpirun = "mpirun")
    {
        if (nproc < 1) throw new InvalidInputException($"--nproc: {nproc} is invalid; expected an integer ≥ 1");
        if (hosts is not null && hostfile is not null) throw new InvalidInputException("--hosts and --hostfile: give one of them");
        if (hostfile is not null && !File.Exists(hostfile)) throw new InvalidInputException($"--hostfile: {hostfile} does not exist");
        if (hosts is not null)
        {
            foreach (var entry in hosts.Split(','))
            {
                var parts = entry.Split(':');
                if (parts[0].Length == 0 || parts.Length > 2 || (parts.Length == 2 && !(int.TryParse(parts[1], out var slots) && slots > 0)))
                    throw new InvalidInputException($"--hosts: '{entry}' is invalid; expected host or host:slots, comma-separated (e.g. node1:4,node2:4)");
            }
        }
        var start = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        void Add(params string[] args) { foreach (var a in args) start.ArgumentList.Add(a); }
        if (Environment.UserName == "root") Add("--allow-run-as-root");
        Add("-np", nproc.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (hosts is not null) Add("--host", hosts);
        else if (hostfile is not null) Add("--hostfile", hostfile);
        else Add("--oversubscribe");   // one node: as many ranks as asked, even beyond its core count (CPU runs share the cores)
        // Threads are divided among a node's ranks by SharpTune itself; mpirun's core binding would pin them all to one core each.
        Add("--bind-to", "none");
        foreach (var name in new[] { "OMP_NUM_THREADS", "SHARPTUNE_LIBTORCH", "SHARPTUNE_LIBMPI", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "CUDA_VISIBLE_DEVICES" })
            if (Environment.GetEnvironmentVariable(name) is not null) Add("-x", name);
        Add(sharptune, "train");
        foreach (var a in trainArgs) Add(a);
        return start;
    }
}
