using System.Security.Cryptography;
using System.Text;

namespace SharpTune.Distributed;

/// <summary>Joins the job this process was launched into, and checks that every rank runs the same thing.</summary>
public static class Ranks
{
    /// <summary>The job's communicator: MPI when a launcher started several ranks, otherwise one process.</summary>
    public static ICommunicator Start(LaunchEnvironment launch, TimeSpan timeout)
    {
        if (!launch.IsDistributed) return new SingleProcess();
        return MpiCommunicator.TryStart(launch, timeout, out var reason)
            ?? throw new InvalidInputException($"{launch.Launcher} started {launch.WorldSize} ranks but MPI is not available: {reason}");
    }

    /// <summary>
    /// CPU threads per rank: the node's cores divided among its ranks (two ranks with all cores each would fight over
    /// them), unless OMP_NUM_THREADS says otherwise.
    /// </summary>
    public static int ThreadsPerRank(ICommunicator comm) =>
        int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), out var n) && n > 0 ? n : Math.Max(1, Environment.ProcessorCount / Math.Max(1, comm.LocalSize));

    /// <summary>
    /// Fails on every rank when the ranks' configs or model files differ (a stale copy on one node would otherwise train
    /// silently wrong): each rank's checksum is gathered and compared with rank 0's.
    /// </summary>
    public static void CheckSameInputs(ICommunicator comm, string configText, string modelDir)
    {
        if (comm.WorldSize == 1) return;
        var all = comm.Gather(Fingerprint(configText, modelDir));
        var differing = Enumerable.Range(1, all.Length - 1).Where(r => all[r] != all[0]).ToList();
        if (differing.Count > 0)
            throw new InvalidInputException($"rank{(differing.Count > 1 ? "s" : "")} {string.Join(", ", differing)}: the config or the model files ({modelDir}) differ from rank 0's (checksum mismatch); give every rank the same files");
    }

    /// <summary>
    /// SHA-256 (first 8 bytes) of the resolved config, the model's JSON files and each weight file's name, size and
    /// safetensors header (its tensors' names, shapes and offsets): cheap for 70B weights, yet any other checkpoint differs.
    /// </summary>
    public static long Fingerprint(string configText, string modelDir)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(configText));
        foreach (var file in Directory.GetFiles(modelDir).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(file);
            if (name.EndsWith(".json", StringComparison.Ordinal)) { sha.AppendData(Encoding.UTF8.GetBytes(name)); sha.AppendData(File.ReadAllBytes(file)); }
            else if (name.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                using var stream = File.OpenRead(file);
                sha.AppendData(Encoding.UTF8.GetBytes($"{name}:{stream.Length}"));
                var lengthBytes = new byte[8];
                stream.ReadExactly(lengthBytes);
                long headerLength = Math.Min(BitConverter.ToInt64(lengthBytes), 100L << 20);
                var header = new byte[headerLength];
                stream.ReadExactly(header);
                sha.AppendData(header);
            }
        }
        return BitConverter.ToInt64(sha.GetHashAndReset(), 0);
    }
}
