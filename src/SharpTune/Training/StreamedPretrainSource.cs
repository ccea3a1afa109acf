using SharpTune.Data;
using SharpTune.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// Batches of a pretraining_dataset stream: micro-batch i holds stream rows [i × micro_batch_size, ...), every row
/// sequence_len tokens trained on all of them. The run is one "epoch" of max_steps × accumulation × ranks micro-batches.
/// A checkpoint carries the stream's cursor, so a resumed run reads on from the same document and token.
/// </summary>
public sealed class StreamedPretrainSource(PretrainStream stream, int microBatchSize, int batchesPerRun) : IBatchSource, ICheckpointedSource
{
    private const string StateFile = "pretrain_stream.json";

    public int BatchesPerEpoch => batchesPerRun;

    public LabeledBatch Batch(int epoch, int index)
    {
        long first = ((long)epoch * batchesPerRun + index) * microBatchSize;
        var rows = Enumerable.Range(0, microBatchSize).Select(r => stream.Row(first + r)).ToArray();
        int t = rows[0].Length;
        var ids = new long[rows.Length * t];
        for (int r = 0; r < rows.Length; r++)
            for (int j = 0; j < t; j++) ids[r * t + j] = rows[r][j];
        long[] shape = [rows.Length, t];
        var input = torch.tensor(ids, shape, ScalarType.Int64);
        // Every row is full: no padding, so no mask (the causal fast path), and labels are the ids themselves.
        return new LabeledBatch(new ForwardBatch(input), input.clone());
    }

    public void SaveState(string checkpointDir) => File.WriteAllText(Path.Combine(checkpointDir, StateFile), PretrainStream.ToJson(stream.Cursor));

    public void RestoreState(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, StateFile);
        if (!File.Exists(path))
            throw new InvalidInputException($"{checkpointDir}: no {StateFile}; the checkpoint was not written by a pretraining_dataset run, so the stream position is unknown");
        stream.Seek(PretrainStream.FromJson(File.ReadAllText(path)));
    }
}
