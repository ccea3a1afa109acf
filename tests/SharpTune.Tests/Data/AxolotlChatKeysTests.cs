using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

/// <summary>axolotl's chat_template labelling keys: message_field_training, drop_system_message, eot_tokens / train_on_eot.</summary>
public sealed class AxolotlChatKeysTests
{
    private static JsonObject Turn(string role, string content, bool? training = null, string field = "training")
    {
        var m = new JsonObject { ["role"] = role, ["content"] = content };
        if (training is { } t) m[field] = t;
        return m;
    }

    private static TokenizedExample One(JsonObject row, string tokenizer, Func<TrainConfig, TrainConfig> edit)
    {
        var config = edit(MakeConfig(WriteJsonl(row), "chat_template", tokenizer));
        return Assert.Single(Prepare(config, tokenizer == "qwen3" ? Qwen3 : Llama3).Train);
    }

    private static TrainConfig Dataset(TrainConfig c, Func<DatasetConfig, DatasetConfig> edit) => c with { Datasets = [edit(c.Datasets[0])] };

    [Fact]
    public void A_turns_training_flag_overrides_its_role()
    {
        var row = new JsonObject
        {
            ["messages"] = new JsonArray(Turn("user", "Question one", training: true), Turn("assistant", "Answer one", training: false),
                Turn("user", "Question two"), Turn("assistant", "Answer two")),
        };
        var e = One(row, "qwen3", c => Dataset(c, d => d with { ChatTemplate = "chatml" }));
        var runs = LabelledRuns(e).Select(r => Qwen3.Decode(r)).ToArray();
        Assert.Equal(["Question one<|im_end|>", "Answer two<|im_end|>"], runs);
    }

    [Fact]
    public void Message_field_training_names_the_flag()
    {
        var row = new JsonObject
        {
            ["messages"] = new JsonArray(Turn("user", "Q", training: true, field: "train"), Turn("assistant", "A", training: false, field: "train")),
        };
        var e = One(row, "qwen3", c => Dataset(c, d => d with { ChatTemplate = "chatml", MessageFieldTraining = "train" }));
        Assert.Equal(["Q<|im_end|>"], LabelledRuns(e).Select(r => Qwen3.Decode(r)).ToArray());
    }

    [Fact]
    public void Drop_system_message_leaves_the_system_turn_out()
    {
        var row = Chat(("system", "Be terse."), ("user", "Hi"), ("assistant", "Yo."));
        var kept = One(row, "qwen3", c => Dataset(c, d => d with { ChatTemplate = "chatml" }));
        var dropped = One(row, "qwen3", c => Dataset(c, d => d with { ChatTemplate = "chatml", DropSystemMessage = true }));
        Assert.Equal("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo.<|im_end|>\n", Qwen3.Decode(kept.InputIds));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo.<|im_end|>\n", Qwen3.Decode(dropped.InputIds));
        Assert.Equal(["Yo.<|im_end|>"], LabelledRuns(dropped).Select(r => Qwen3.Decode(r)).ToArray());

        var only = WriteJsonl(Chat(("system", "Just this.")));
        var config = Dataset(MakeConfig(only, "chat_template", "qwen3"), d => d with { ChatTemplate = "chatml", DropSystemMessage = true });
        var error = Assert.Throws<InvalidInputException>(() => Prepare(config, Qwen3));
        Assert.Equal($"{only}:1: field \"messages\" holds only a system message, which drop_system_message removes; expected at least one more message (datasets[0], type chat_template)", error.Message);
    }

    [Theory]
    // llama3's eos is <|end_of_text|>; its turns end in <|eot_id|>, labelled as train_on_eot says.
    [InlineData(TrainOnEos.Turn, new[] { "A1<|eot_id|>", "A2<|eot_id|>" })]
    [InlineData(TrainOnEos.Last, new[] { "A1", "A2<|eot_id|>" })]
    [InlineData(TrainOnEos.None, new[] { "A1", "A2" })]
    [InlineData(TrainOnEos.All, new[] { "<|eot_id|>", "A1<|eot_id|>", "<|eot_id|>", "A2<|eot_id|>" })]
    public void Eot_tokens_follow_train_on_eot(TrainOnEos rule, string[] expected)
    {
        var row = Chat(("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"));
        var e = One(row, "llama3", c => Dataset(c with { ChatTemplate = "llama3", EotTokens = ["<|eot_id|>"] },
            d => d with { TrainOnEot = rule, TrainOnEos = TrainOnEos.None }));
        Assert.Equal(expected, LabelledRuns(e).Select(r => Llama3.Decode(r)).ToArray());
    }

    [Fact]
    public void Bad_eot_tokens_are_refused_with_the_key()
    {
        string file = WriteJsonl(Chat(("user", "Q"), ("assistant", "A")));
        var notInTemplate = MakeConfig(file, "chat_template", "llama3") with { ChatTemplate = "llama3", EotTokens = ["<|im_end|>"] };
        Assert.Equal("datasets[0]: eot_tokens: '<|im_end|>' does not appear in the chat template; expected tokens the template writes at the end of a turn",
            StripFile(Assert.Throws<InvalidInputException>(() => Prepare(notInTemplate, Llama3)).Message));
        var conflict = Dataset(MakeConfig(file, "chat_template", "qwen3") with { ChatTemplate = "chatml", EotTokens = ["<|im_end|>"] },
            d => d with { TrainOnEos = TrainOnEos.Turn, TrainOnEot = TrainOnEos.Last });
        Assert.Equal("datasets[0]: train_on_eot: last conflicts with train_on_eos: turn: the eos_token <|im_end|> is one of eot_tokens; expected the same value for both",
            StripFile(Assert.Throws<InvalidInputException>(() => Prepare(conflict, Qwen3)).Message));
    }

    private static string StripFile(string message) => message;
}
