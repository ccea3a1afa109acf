using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class PackingTests
{
    private static IReadOnlyList<TokenizedExample> BundledRows() =>
        Prepare(MakeConfig(Path.Combine(Examples, "alpaca.json"), "alpaca") with
        {
            Datasets = [new DatasetConfig { Path = Path.Combine(Examples, "alpaca.json"), Type = "alpaca" },
                        new DatasetConfig { Path = Path.Combine(Examples, "chat.jsonl"), Type = "chat_template" }],
        }, Llama3).Train;

    [Fact]
    public void Best_fit_decreasing_fills_bins_and_keeps_every_row_once()
    {
        int[] lengths = [5, 9, 3, 7, 1, 4, 6, 2, 8];
        var bins = Packing.BestFitDecreasing(lengths, 10);
        Assert.Equal(Enumerable.Range(0, 9), bins.SelectMany(b => b).Order());
        Assert.All(bins, b => Assert.True(b.Sum(i => lengths[i]) <= 10));
        Assert.Equal(5, bins.Count); // 45 tokens: the optimum for capacity 10
        Assert.Equal(0.9, Packing.Efficiency(bins, lengths, 10), 6);
    }

    [Fact]
    public void Packed_rows_keep_documents_apart()
    {
        var rows = BundledRows();
        var plan = new BatchPlan(rows, microBatchSize: 4, sequenceLen: 512, packing: true, padToSequenceLen: true, padTokenId: 128004, seed: 1);
        Assert.Equal(180, rows.Count);
        Assert.True(plan.PackingEfficiency >= 0.95, $"efficiency {plan.PackingEfficiency:F4}");
        long labelled = 0, expectedLabelled = 0;
        foreach (var r in rows) expectedLabelled += r.Labels.Skip(1).Count(l => l != -100);
        for (int b = 0; b < plan.BatchesPerEpoch; b++)
        {
            using var batch = plan.Batch(0, b);
            Assert.Equal([batch.InputIds.shape[0], 512L], batch.InputIds.shape);
            var ids = batch.InputIds.data<long>().ToArray();
            var labels = batch.Labels.data<long>().ToArray();
            var mask = batch.AttentionMask.data<long>().ToArray();
            var pos = batch.PositionIds!.data<long>().ToArray();
            var seg = batch.SegmentIds!.data<long>().ToArray();
            for (int row = 0; row < batch.InputIds.shape[0]; row++)
            for (int t = 0; t < 512; t++)
            {
                int k = row * 512 + t;
                bool starts = t == 0 || seg[k] != seg[k - 1];
                if (seg[k] == 0)
                {
                    // padding: after every document, masked, unlabelled
                    Assert.Equal(0, mask[k]);
                    Assert.Equal(-100, labels[k]);
                    Assert.Equal(128004, ids[k]);
                    continue;
                }
                Assert.Equal(1, mask[k]);
                if (starts)
                {
                    Assert.Equal(t == 0 ? 1 : seg[k - 1] + 1, seg[k]); // segments number documents 1, 2, ...
                    Assert.Equal(0, pos[k]);                          // positions restart per document
                    Assert.Equal(-100, labels[k]);                    // never predicted from the previous document
                }
                else Assert.Equal(pos[k - 1] + 1, pos[k]);
                if (labels[k] != -100) { labelled++; Assert.Equal(ids[k], labels[k]); }
            }
        }
        // Packing loses no label except each document's first (which the shifted loss never uses unpacked either).
        Assert.Equal(expectedLabelled, labelled);
    }

    [Fact]
    public void Batches_are_deterministic_and_epochs_reshuffle()
    {
        var rows = BundledRows();
        var plan = new BatchPlan(rows, 2, 512, packing: false, padToSequenceLen: false, padTokenId: 0, seed: 7);
        Assert.Equal(90, plan.BatchesPerEpoch);
        using var a = plan.Batch(0, 5);
        using var again = new BatchPlan(rows, 2, 512, false, false, 0, 7).Batch(0, 5);
        Assert.Equal(a.InputIds.data<long>().ToArray(), again.InputIds.data<long>().ToArray());
        Assert.Equal(a.Labels.data<long>().ToArray(), again.Labels.data<long>().ToArray());
        Assert.Null(a.SegmentIds);
        // Unpadded batches are as long as their longest row.
        var order = plan.EpochOrder(0);
        Assert.Equal(Math.Max(rows[order[10]].InputIds.Length, rows[order[11]].InputIds.Length), a.InputIds.shape[1]);
        Assert.Equal(Enumerable.Range(0, 180), plan.EpochOrder(1).Order());
        Assert.NotEqual(plan.EpochOrder(0), plan.EpochOrder(1));
        Assert.NotEqual(plan.EpochOrder(0), new BatchPlan(rows, 2, 512, false, false, 0, 8).EpochOrder(0));
    }

    [Fact]
    public void Val_set_size_split_is_seeded_and_sized()
    {
        var rows = Enumerable.Range(0, 103).ToList();
        var (train, eval) = DataPipeline.Split(rows, 0.1, 42);
        Assert.Equal(11, eval.Count); // ceil(0.1 × 103)
        Assert.Equal(92, train.Count);
        Assert.Equal(eval, DataPipeline.Split(rows, 0.1, 42).Eval);
        Assert.NotEqual(eval, DataPipeline.Split(rows, 0.1, 43).Eval);
        Assert.Equal(7, DataPipeline.Split(rows, 7, 42).Eval.Count);
        Assert.Empty(train.Intersect(eval));
        var e = Assert.Throws<InvalidInputException>(() => DataPipeline.Split(rows, 103, 1));
        Assert.Equal("val_set_size: 103 holds out 103 of 103 rows, leaving none to train on", e.Message);
    }

    [Fact]
    public void Test_datasets_become_the_eval_set_and_val_set_size_splits_otherwise()
    {
        string alpaca = Path.Combine(Examples, "alpaca.json");
        var split = Prepare(MakeConfig(alpaca, "alpaca") with { ValSetSize = 0.25 }, Llama3);
        Assert.Equal(30, split.Eval.Count);
        Assert.Equal(90, split.Train.Count);
        var separate = Prepare(MakeConfig(alpaca, "alpaca") with
        {
            ValSetSize = 0.25,
            TestDatasets = [new DatasetConfig { Path = Path.Combine(Examples, "chat.jsonl"), Type = "chat_template" }],
        }, Llama3);
        Assert.Equal(120, separate.Train.Count);
        Assert.Equal(60, separate.Eval.Count);
        Assert.Equal(60, separate.Stats.EvalRows);
    }
}
