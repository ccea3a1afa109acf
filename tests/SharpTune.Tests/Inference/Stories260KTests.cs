using System.Text.Json;

namespace SharpTune.Tests.Inference;

/// <summary>
/// A real pretrained model: llama2.c's TinyStories 260K Llama in the HF layout (../shared/models/stories260K; tied
/// embeddings, GQA, head_dim 8, SentencePiece-style BPE tokenizer). It may not be committed, so these tests skip with
/// the reason when it is absent (and fail under CI=true).
/// </summary>
public sealed class Stories260KTests
{
    private const string KnownOpening = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

    [SkippableFact]
    public void GreedyGenerationTellsTheModelsKnownStoryOpening()
    {
        var model = TestPaths.RequireShared("models/stories260K");
        var (code, stdout, stderr) = CliRunner.Run("generate", "--model", model, "--prompt", "Once upon a time", "--max-new-tokens", "40");
        Assert.True(code == 0, stderr);
        Assert.StartsWith(KnownOpening, "Once upon a time" + stdout.Trim());
    }

    /// <summary>Its stories end with id 1 (`<s>`, the llama2.c convention), which its generation_config.json does not list.</summary>
    [SkippableFact]
    public void GenerationStopsOnStopTokenIdsAndOnEveryEosIdOfGenerationConfig()
    {
        var model = TestPaths.RequireShared("models/stories260K");
        long[] Generate(string dir, params string[] extra)
        {
            var (code, stdout, stderr) = CliRunner.Run(["generate", "--model", dir, "--prompt", "Once upon a time", "--max-new-tokens", "500", "--output-ids", .. extra]);
            Assert.True(code == 0, stderr);
            return JsonSerializer.Deserialize<long[]>(stdout.Trim())!;
        }
        var unstopped = Generate(model);
        Assert.Equal(500, unstopped.Length);
        int end = Array.IndexOf(unstopped, 1L);
        Assert.True(end > 0, "the story never emitted id 1 in 500 tokens");

        var stopped = Generate(model, "--stop-token-ids", "1");
        Assert.Equal(unstopped[..(end + 1)], stopped);

        // The same model with generation_config.json listing eos_token_id [2, 1] stops there by itself.
        var copy = TestPaths.TempDir();
        foreach (var file in Directory.GetFiles(model)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(copy, "generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 1]}""");
        Assert.Equal(stopped, Generate(copy));

        var (badCode, _, badErr) = CliRunner.Run("generate", "--model", model, "--prompt", "x", "--stop-token-ids", "1,two");
        Assert.Equal(2, badCode);
        Assert.Equal("error: --stop-token-ids: 'two' is not a token id; expected comma-separated non-negative integers", badErr.Trim());
    }

    /// <summary>examples/stories260K-lora.yaml, shortened: a LoRA on a few sentences renames the story's heroine.</summary>
    [SkippableFact]
    public void ShortLoraFineTuneTeachesANewName()
    {
        var model = TestPaths.RequireShared("models/stories260K");
        var output = TestPaths.TempDir();
        var config = Path.Combine(TestPaths.RepoRoot, "examples", "stories260K-lora.yaml");
        var (code, stdout, stderr) = CliRunner.Run("train", config, "--set", "max_steps=30", "--set", "save_steps=30", "--set", $"output_dir={output}");
        Assert.True(code == 0, stdout + stderr);
        Assert.True(File.Exists(Path.Combine(output, "adapter_model.safetensors")));

        string Story(params string[] adapter)
        {
            var (c, text, err) = CliRunner.Run(["generate", "--model", model, .. adapter, "--prompt", "Once upon a time", "--max-new-tokens", "24"]);
            Assert.True(c == 0, err);
            return "Once upon a time" + text.Trim();
        }
        Assert.StartsWith("Once upon a time, there was a little girl named Lily.", Story());
        Assert.StartsWith("Once upon a time, there was a little girl named Zoe.", Story("--adapter", output));
    }
}
