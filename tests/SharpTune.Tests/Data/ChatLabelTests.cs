using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class ChatLabelTests
{
    private static readonly (string, string)[] Conversation =
    [
        ("system", "You are terse."),
        ("user", "What is 6 times 7?"),
        ("assistant", "6 times 7 is 42."),
        ("user", "And 3 plus 4?"),
        ("assistant", "3 plus 4 is 7."),
    ];

    private static TokenizedExample One(string tokenizer, JsonObject row, Func<DatasetConfig, DatasetConfig>? edit = null, bool trainOnInputs = false)
    {
        var tok = tokenizer == "qwen3" ? Qwen3 : Llama3;
        var config = MakeConfig(WriteJsonl(row), "chat_template", tokenizer) with { TrainOnInputs = trainOnInputs };
        if (edit != null) config = config with { Datasets = [edit(config.Datasets[0])] };
        var data = Prepare(config, tok);
        return Assert.Single(data.Train);
    }

    [Fact]
    public void Llama3_only_assistant_turns_and_their_eot_carry_labels()
    {
        var e = One("llama3", Chat(Conversation));
        int eot = Llama3.TokenToId("<|eot_id|>")!.Value;
        Assert.Equal(128009, eot);
        var runs = LabelledRuns(e);
        Assert.Equal(2, runs.Count);
        Assert.Equal(Llama3.Encode("6 times 7 is 42.", false).Append(eot), runs[0]);
        Assert.Equal(Llama3.Encode("3 plus 4 is 7.", false).Append(eot), runs[1]);
        Assert.Equal("6 times 7 is 42.<|eot_id|>", Llama3.Decode(runs[0]));
        Assert.Equal("3 plus 4 is 7.<|eot_id|>", Llama3.Decode(runs[1]));
        // The ids are the rendered template tokenized once: BOS first, header tokens unlabelled.
        Assert.Equal(128000, e.InputIds[0]);
        Assert.StartsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>", Llama3.Decode(e.InputIds));
        Assert.Equal(runs.Sum(r => r.Length), e.TrainableTokens);
    }

    [Fact]
    public void Qwen3_only_assistant_turns_and_im_end_carry_labels()
    {
        var e = One("qwen3", Chat(Conversation));
        int imEnd = Qwen3.TokenToId("<|im_end|>")!.Value;
        Assert.Equal(151645, imEnd);
        var runs = LabelledRuns(e);
        Assert.Equal(2, runs.Count);
        Assert.Equal(Qwen3.Encode("6 times 7 is 42.", false).Append(imEnd), runs[0]);
        Assert.Equal(Qwen3.Encode("3 plus 4 is 7.", false).Append(imEnd), runs[1]);
        Assert.Equal("3 plus 4 is 7.<|im_end|>", Qwen3.Decode(runs[1]));
        // Qwen3 renders an empty think block before the last answer; it is template text, not trained.
        Assert.Contains("<|im_start|>assistant\n<think>\n\n</think>\n\n3 plus 4 is 7.<|im_end|>", Qwen3.Decode(e.InputIds));
    }

    [Fact]
    public void Gemma3_model_turns_and_end_of_turn_carry_labels()
    {
        var gemma = SharpTune.Tokenization.HfTokenizer.FromDirectory(TokenizerDir("gemma3"));
        var config = MakeConfig(WriteJsonl(Chat(Conversation)), "chat_template", "gemma3");
        var e = Assert.Single(Prepare(config, gemma).Train);
        int endOfTurn = gemma.TokenToId("<end_of_turn>")!.Value;
        var runs = LabelledRuns(e);
        Assert.Equal(gemma.Encode("6 times 7 is 42.", false).Append(endOfTurn), runs[0]);
        Assert.Equal("3 plus 4 is 7.<end_of_turn>", gemma.Decode(runs[1]));
        Assert.Equal(2, runs.Count);
    }

    [Fact]
    public void Llama2_sentencepiece_answers_and_eos_carry_labels()
    {
        var config = MakeConfig(WriteJsonl(Chat(Conversation)), "chat_template", "llama2") with { ChatTemplate = "llama2" };
        var e = Assert.Single(Prepare(config, Llama2).Train);
        var runs = LabelledRuns(e);
        // The template writes content + ' ' + eos: the space token between them is template text, left unlabelled.
        Assert.Equal(4, runs.Count);
        // Digits split off the SentencePiece space marker: "▁" (the template's space) stays unlabelled, "6" onwards is trained.
        Assert.Equal(28705, Llama2.Encode("6 times 7 is 42.", false)[0]);
        Assert.Equal(Llama2.Encode("6 times 7 is 42.", false).Skip(1).Append(2).Concat(Llama2.Encode("3 plus 4 is 7.", false).Skip(1)).Append(2),
            e.Labels.Where(l => l != -100));
        Assert.Equal("3 plus 4 is 7.", Llama2.Decode(runs[2]));
        Assert.Equal("</s>", Llama2.Decode(runs[3]));
        Assert.Equal(1, e.InputIds[0]);
    }

    [Fact]
    public void A_template_that_rejects_the_conversation_is_a_bad_row_with_its_location()
    {
        // Gemma's template requires alternating user/assistant turns.
        var gemma = SharpTune.Tokenization.HfTokenizer.FromDirectory(TokenizerDir("gemma3"));
        string file = WriteJsonl(Chat(("user", "a"), ("user", "b"), ("assistant", "c")));
        var error = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "chat_template", "gemma3"), gemma));
        Assert.StartsWith($"{file}:1: the chat template rejected the conversation: ", error.Message);
    }

    [Theory]
    [InlineData(TrainOnEos.Turn, 2)]
    [InlineData(TrainOnEos.Last, 1)]
    [InlineData(TrainOnEos.None, 0)]
    [InlineData(TrainOnEos.All, 5)]
    public void Train_on_eos_selects_which_end_of_turn_tokens_are_labelled(TrainOnEos mode, int expected)
    {
        var e = One("llama3", Chat(Conversation), d => d with { TrainOnEos = mode });
        Assert.Equal(expected, e.Labels.Count(l => l == 128009));
        Assert.Equal(Llama3.Encode("6 times 7 is 42.", false).Count + Llama3.Encode("3 plus 4 is 7.", false).Count,
            e.Labels.Count(l => l != -100 && l != 128009));
    }

    [Fact]
    public void Roles_to_train_user_labels_user_turns_too()
    {
        var e = One("llama3", Chat(Conversation), d => d with { RolesToTrain = ["user", "assistant"] });
        var runs = LabelledRuns(e);
        Assert.Equal(["What is 6 times 7?<|eot_id|>", "6 times 7 is 42.<|eot_id|>", "And 3 plus 4?<|eot_id|>", "3 plus 4 is 7.<|eot_id|>"],
            runs.Select(r => Llama3.Decode(r)).ToArray());
    }

    [Fact]
    public void Train_on_inputs_labels_every_token()
    {
        var e = One("llama3", Chat(Conversation), trainOnInputs: true);
        Assert.Equal(e.InputIds.Length, e.TrainableTokens);
    }

    [Fact]
    public void Sharegpt_from_value_rows_map_roles()
    {
        var row = new JsonObject
        {
            ["conversations"] = new JsonArray(
                new JsonObject { ["from"] = "human", ["value"] = "Hi there" },
                new JsonObject { ["from"] = "gpt", ["value"] = "Hello, friend." }),
        };
        var config = MakeConfig(WriteJsonl(row), "sharegpt");
        var e = Assert.Single(Prepare(config, Llama3).Train);
        Assert.Equal("Hello, friend.<|eot_id|>", Llama3.Decode(Assert.Single(LabelledRuns(e))));
        Assert.Contains("<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>", Llama3.Decode(e.InputIds));
    }

    [Fact]
    public void Message_property_mappings_and_field_messages_are_honoured()
    {
        var row = new JsonObject
        {
            ["dialog"] = new JsonArray(
                new JsonObject { ["speaker"] = "user", ["text"] = "Ping" },
                new JsonObject { ["speaker"] = "assistant", ["text"] = "Pong." }),
        };
        var e = One("llama3", row, d => d with
        {
            FieldMessages = "dialog",
            MessagePropertyMappings = new Dictionary<string, string> { ["role"] = "speaker", ["content"] = "text" },
        });
        Assert.Equal("Pong.<|eot_id|>", Llama3.Decode(Assert.Single(LabelledRuns(e))));
    }

    [Fact]
    public void Named_chatml_template_overrides_the_tokenizer_template()
    {
        var config = MakeConfig(WriteJsonl(Chat(("user", "Hi"), ("assistant", "Yo."))), "chat_template", "qwen3") with { ChatTemplate = "chatml" };
        var e = Assert.Single(Prepare(config, Qwen3).Train);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo.<|im_end|>\n", Qwen3.Decode(e.InputIds));
        Assert.Equal("Yo.<|im_end|>", Qwen3.Decode(Assert.Single(LabelledRuns(e))));
    }
}
