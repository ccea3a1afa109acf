using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class FormatTests
{
    [Fact]
    public void Alpaca_renders_the_axolotl_prompt_and_trains_output_plus_eos()
    {
        var row = new JsonObject { ["instruction"] = "Add the numbers.", ["input"] = "2 and 3", ["output"] = "2 + 3 = 5." };
        var e = Assert.Single(Prepare(MakeConfig(WriteJsonl(row), "alpaca"), Llama3).Train);
        // This llama3 tokenizer.json's post-processor is ByteLevel only: like transformers, no BOS is added.
        Assert.Equal("Below is an instruction that describes a task, paired with an input that provides further context. " +
                     "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n" +
                     "### Response:\n2 + 3 = 5.<|end_of_text|>", Llama3.Decode(e.InputIds));
        var run = Assert.Single(LabelledRuns(e));
        Assert.Equal(Llama3.Encode("2 + 3 = 5.", false).Append(128001), run);
    }

    [Fact]
    public void Alpaca_without_input_uses_the_short_preamble()
    {
        var row = new JsonObject { ["instruction"] = "Say hi.", ["input"] = "", ["output"] = "Hi." };
        var e = Assert.Single(Prepare(MakeConfig(WriteJsonl(row), "alpaca"), Llama2).Train);
        Assert.Equal("<s> Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                     "### Instruction:\nSay hi.\n\n### Response:\nHi.</s>", Llama2.Decode(e.InputIds));
        Assert.Equal("Hi.</s>", Llama2.Decode(Assert.Single(LabelledRuns(e))).TrimStart());
    }

    [Fact]
    public void Completion_trains_every_text_token_and_eos()
    {
        var row = new JsonObject { ["text"] = "The owl sings by the river." };
        var e = Assert.Single(Prepare(MakeConfig(WriteJsonl(row), "completion"), Llama3).Train);
        Assert.Equal(Llama3.Encode("The owl sings by the river.", false).Append(128001), e.InputIds);
        Assert.Equal(e.InputIds.Length, e.TrainableTokens);
        // With a tokenizer whose post-processor adds BOS, BOS comes first and carries no label.
        var l2 = Assert.Single(Prepare(MakeConfig(WriteJsonl(row), "completion", "llama2"), Llama2).Train);
        Assert.Equal(1, l2.InputIds[0]);
        Assert.Equal(2, l2.InputIds[^1]);
        Assert.Equal(l2.InputIds.Length - 1, l2.TrainableTokens);
    }

    [Fact]
    public void Input_output_labels_only_segments_marked_true()
    {
        var row = JsonNode.Parse("""{"segments": [{"text": "<|begin_of_text|>Q: 2+2?\n", "label": false}, {"text": "A: 4<|end_of_text|>", "label": true}]}""")!;
        var e = Assert.Single(Prepare(MakeConfig(WriteJsonl(row), "input_output"), Llama3).Train);
        Assert.Equal(128000, e.InputIds[0]);
        Assert.Equal("A: 4<|end_of_text|>", Llama3.Decode(Assert.Single(LabelledRuns(e))));
    }

    [Fact]
    public void Pretrain_concatenates_documents_with_eos_and_chunks_to_sequence_len()
    {
        string corpus = Path.Combine(Examples, "corpus.txt");
        var lines = File.ReadAllLines(corpus).Where(l => l.Trim().Length > 0).ToArray();
        long total = lines.Sum(l => Llama3.Encode(l).Count + 1);
        var data = Prepare(MakeConfig(corpus, "pretrain", sequenceLen: 64), Llama3);
        Assert.Equal(200, data.Stats.RowsRead);
        Assert.Equal((int)((total + 63) / 64), data.Train.Count);
        Assert.All(data.Train.Take(data.Train.Count - 1), r => Assert.Equal(64, r.InputIds.Length));
        Assert.Equal(total, data.Train.Sum(r => (long)r.InputIds.Length));
        Assert.Equal(total % 64 == 0 ? 64 : total % 64, data.Train[^1].InputIds.Length);
        Assert.Equal(total, data.Stats.TrainableTokens);
        // Documents follow each other: the second starts right after the first one's EOS.
        int first = Llama3.Encode(lines[0]).Count;
        Assert.Equal(128001, data.Train[0].InputIds[first]);
        Assert.Equal(Llama3.Encode(lines[1])[0], data.Train[0].InputIds[first + 1]);
    }

    [Fact]
    public void Preference_strings_render_the_prompt_with_the_template_and_completions_end_with_eot()
    {
        var row = new JsonObject { ["prompt"] = "What is 2 plus 2?", ["chosen"] = "It is 4.", ["rejected"] = "It is 5." };
        var config = MakeConfig(WriteJsonl(row), "preference") with { Rl = RlType.Dpo };
        var data = Prepare(config, Llama3);
        var pair = Assert.Single(data.PreferenceTrain);
        Assert.Empty(data.Train);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 plus 2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Llama3.Decode(pair.PromptIds));
        Assert.Equal("It is 4.<|eot_id|>", Llama3.Decode(pair.ChosenIds));
        Assert.Equal("It is 5.<|eot_id|>", Llama3.Decode(pair.RejectedIds));
        Assert.Equal(128009, pair.ChosenIds[^1]);
    }

    [Fact]
    public void Preference_message_lists_share_the_prompt()
    {
        var row = JsonNode.Parse("""
            {"chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}],
             "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}]}
            """)!;
        var config = MakeConfig(WriteJsonl(row), "chat_template.default", "qwen3") with { Rl = RlType.Dpo };
        var pair = Assert.Single(Prepare(config, Qwen3).PreferenceTrain);
        Assert.Equal("<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n", Qwen3.Decode(pair.PromptIds));
        Assert.EndsWith("Hello.<|im_end|>", Qwen3.Decode(pair.ChosenIds));
        Assert.EndsWith("Go away.<|im_end|>", Qwen3.Decode(pair.RejectedIds));
        Assert.Equal(151645, pair.RejectedIds[^1]);
    }

    [Fact]
    public void Bundled_example_sets_prepare_with_expected_counts()
    {
        var alpaca = Prepare(MakeConfig(Path.Combine(Examples, "alpaca.json"), "alpaca"), Llama3);
        Assert.Equal(120, alpaca.Stats.RowsRead);
        Assert.Equal(120, alpaca.Train.Count);
        var chat = Prepare(MakeConfig(Path.Combine(Examples, "chat.jsonl"), "chat_template"), Llama3);
        Assert.Equal(60, chat.Train.Count);
        Assert.All(chat.Train, r => Assert.True(r.TrainableTokens > 0));
        var prefs = Prepare(MakeConfig(Path.Combine(Examples, "preference.jsonl"), "chat_template.default") with { Rl = RlType.Dpo }, Llama3);
        Assert.Equal(40, prefs.PreferenceTrain.Count);
    }
}
