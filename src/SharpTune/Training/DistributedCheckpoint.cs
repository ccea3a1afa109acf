using System.Text.Json.Nodes;
using SharpTune.Distributed;
using SharpTune.Modeling;
using SharpTune.SafeTensors;

namespace SharpTune.Training;

/// <summary>
/// The multi-process side of a checkpoint. Every rank first waits for all the others (a checkpoint never holds a step
/// that some rank has not finished); under ZeRO each rank writes its own optimizer shard, and rank 0 — the only writer
/// of the checkpoint folder — moves them into the folder with zero_shards.json (which rank owned which parameters)
/// before the folder's atomic rename. The shards hold disjoint parameter names, so together they are the consolidated
/// optimizer state; a resume with any world size loads, from all of them, the parameters it now owns.
/// </summary>
public sealed class DistributedCheckpoint(DataParallel parallel, string outputDir)
{
    public const string MetadataFile = "zero_shards.json";
    private const string ShardPrefix = "optimizer-rank-";

    private string StagingDir(int step) => Path.Combine(outputDir, $".zero-shards-{step}");

    /// <summary>
    /// Runs <paramref name="save"/> on rank 0 (given a hook that completes the folder) once every rank has finished the
    /// step, and meanwhile <paramref name="follow"/> on the others: their part in the collectives of rank 0's write.
    /// </summary>
    public void Save(TrainState state, Optimizer optimizer, Action<Action<string>?> save, Action follow)
    {
        var comm = parallel.Communicator;
        comm.Barrier();
        bool sharded = parallel.Stage != ZeroStage.None;
        if (sharded && comm.Rank != 0)
        {
            Directory.CreateDirectory(StagingDir(state.Step));
            SafeTensorsWriter.Save(Path.Combine(StagingDir(state.Step), $"{ShardPrefix}{comm.Rank}.safetensors"), optimizer.StateTensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }
        comm.Barrier();
        if (comm.Rank == 0)
            save(sharded ? dir => CompleteShards(dir, state.Step) : null);
        else follow();
        comm.Barrier();
    }

    private void CompleteShards(string checkpointDir, int step)
    {
        var staging = StagingDir(step);
        var shards = new JsonArray { new JsonObject { ["rank"] = 0, ["file"] = "optimizer.safetensors" } };
        for (int r = 1; r < parallel.WorldSize; r++)
        {
            string name = $"{ShardPrefix}{r}.safetensors";
            File.Move(Path.Combine(staging, name), Path.Combine(checkpointDir, name));
            shards.Add(new JsonObject { ["rank"] = r, ["file"] = name });
        }
        Directory.Delete(staging, recursive: true);
        ModelIO.WriteJsonAtomic(Path.Combine(checkpointDir, MetadataFile), new JsonObject
        {
            ["zero_stage"] = (int)parallel.Stage,
            ["world_size"] = parallel.WorldSize,
            ["shards"] = shards,
            ["owners"] = new JsonObject(parallel.Ownership.Select(o => KeyValuePair.Create(o.Name, (JsonNode?)o.Rank))),
        });
    }

    /// <summary>
    /// Loads the optimizer state this rank's optimizer updates from every optimizer file of the checkpoint (one file
    /// after a DDP or single-process run, one per old rank after ZeRO), whatever the world size that wrote it.
    /// </summary>
    public static void LoadOwned(string checkpointDir, Optimizer optimizer, IReadOnlySet<string> owned)
    {
        var stepCount = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpointDir, "optimizer.json")))!["step_count"]!.GetValue<long>();
        var files = Directory.GetFiles(checkpointDir, "optimizer*.safetensors").Order(StringComparer.Ordinal).ToList();
        var selected = new List<KeyValuePair<string, TorchSharp.torch.Tensor>>();
        foreach (var file in files)
        {
            using var shard = SafeTensorsCheckpoint.Open(file);
            foreach (var name in shard.Names)
            {
                // Keys are "<parameter name>.<slot>"; slots hold no dots.
                int dot = name.LastIndexOf('.');
                if (dot > 0 && owned.Contains(name[..dot])) selected.Add(KeyValuePair.Create(name, shard.Load(name)));
            }
        }
        optimizer.LoadState(selected, stepCount);
    }
}
