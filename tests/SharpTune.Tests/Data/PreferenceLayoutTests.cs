using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

/// <summary>
/// axolotl's named DPO / KTO / ORPO layouts give axolotl's prompt / chosen / rejected (completion) strings; the expected
/// strings are those its prompt_strategies/{dpo,kto,orpo} functions build for the same row.
/// </summary>
public class PreferenceLayoutTests
{
    private const string ChatMlSystemIntel = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 plus 2?<|im_end|>\n<|im_start|>assistant\n";

    private static RowFormatter Formatter(string type, RlType rl, DatasetConfig? dataset = null, string? template = null) =>
        new((dataset ?? new DatasetConfig()) with { Path = "rows.jsonl", Type = type },
            new TrainConfig { BaseModel = TokenizerDir("llama3"), Rl = rl, ChatTemplate = template }, Llama3, "datasets[0]", preference: true);

    private static JsonObject Row(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void Chatml_and_llama3_layouts_write_fixed_text_whatever_the_template()
    {
        var intel = Formatter("chatml.intel", RlType.Dpo).Preference(Row("""{"system": "Be brief.", "question": "What is 2 plus 2?", "chosen": "4.", "rejected": "5."}"""));
        Assert.Equal(new PreferenceTexts(ChatMlSystemIntel, "4.<|im_end|>", "5.<|im_end|>", true), intel);

        // argilla: the prompt is the first of prompt, input, question, instruction; answers chosen or chosen_response.
        var argilla = Formatter("chatml.argilla", RlType.Dpo).Preference(Row("""{"instruction": "Name a colour.", "chosen_response": "Red.", "rejected_response": "Dog.", "system": ""}"""));
        Assert.Equal(new PreferenceTexts("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", "Red.<|im_end|>", "Dog.<|im_end|>", true), argilla);

        // ultra: the answers are the second message of each conversation.
        var ultra = Formatter("chatml.ultra", RlType.Dpo).Preference(Row("""
            {"prompt": "Hi?", "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}],
             "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go."}]}
            """));
        Assert.Equal(new PreferenceTexts("<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n", "Hello.<|im_end|>", "Go.<|im_end|>", true), ultra);

        var icr = Formatter("llama3.icr", RlType.Dpo).Preference(Row("""{"system": "S.", "input": "Q?", "chosen": "A.", "rejected": "B."}"""));
        Assert.Equal(new PreferenceTexts(
            "<|start_header_id|>system<|end_header_id|>\n\nS.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            "A.<|eot_id|>", "B.<|eot_id|>", true), icr);

        // argilla_chat: the question is chosen's first message; no system turn.
        var argillaChat = Formatter("llama3.argilla_chat", RlType.Dpo).Preference(Row("""
            {"chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
             "rejected": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "B."}]}
            """));
        Assert.Equal("<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", argillaChat.Prompt);
        Assert.Equal("B.<|eot_id|>", argillaChat.Rejected);
    }

    [Fact]
    public void Kto_layouts_keep_the_label_and_llama3_argilla_chat_keeps_the_history()
    {
        var argilla = Formatter("chatml.argilla", RlType.Kto).Unpaired(Row("""{"instruction": "Q?", "completion": "A.", "label": true}"""));
        Assert.Equal(new UnpairedTexts("<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n", "A.<|im_end|>", true, true), Assert.Single(argilla));

        var chat = Formatter("llama3.argilla_chat", RlType.Kto).Unpaired(Row("""
            {"completion": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}],
             "label": false}
            """));
        Assert.Equal(new UnpairedTexts(
            "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "A2<|eot_id|>", false, true), Assert.Single(chat));

        // chatml.argilla_chat takes only the first exchange.
        var short_ = Formatter("chatml.argilla_chat", RlType.Kto).Unpaired(Row("""
            {"completion": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}], "label": 1}
            """));
        Assert.Equal(new UnpairedTexts("<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n", "A1<|im_end|>", true, true), Assert.Single(short_));
    }

    [Fact]
    public void Chat_template_default_reads_mapped_messages_and_answers_as_strings_messages_or_lists()
    {
        var dataset = new DatasetConfig
        {
            FieldMessages = "conversation", FieldChosen = "good", FieldRejected = "bad",
            MessagePropertyMappings = new Dictionary<string, string> { ["role"] = "from", ["content"] = "value" },
            Roles = new Dictionary<string, IReadOnlyList<string>> { ["user"] = ["human"], ["assistant"] = ["gpt"] },
        };
        const string row = """
            {"conversation": [{"from": "human", "value": "What is 2 plus 2?"}],
             "good": {"from": "gpt", "value": "It is 4."},
             "bad": [{"from": "human", "value": "ignored"}, {"from": "gpt", "value": "It is 5."}]}
            """;
        var texts = Formatter("chat_template.default", RlType.Dpo, dataset, "chatml").Preference(Row(row));
        Assert.Equal("<|im_start|>user\nWhat is 2 plus 2?<|im_end|>\n<|im_start|>assistant\n", texts.Prompt);
        // The answer rendered after a placeholder user turn, cut where its text starts, trailing whitespace removed.
        Assert.Equal("It is 4.<|im_end|>", texts.Chosen);
        Assert.Equal("It is 5.<|im_end|>", texts.Rejected);
        Assert.False(texts.PromptAddsSpecialTokens);

        // Meta's first Llama-3 template always opens an assistant turn at the end: axolotl's cut keeps it in the answer, and so does this.
        var llama3 = Formatter("chat_template.default", RlType.Dpo, dataset).Preference(Row(row));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 plus 2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", llama3.Prompt);
        Assert.Equal("It is 4.<|eot_id|><|start_header_id|>assistant<|end_header_id|>", llama3.Chosen);

        var unmapped = Assert.Throws<RowException>(() => Formatter("chat_template.default", RlType.Dpo, dataset).Preference(Row("""
            {"conversation": [{"from": "bot", "value": "Hi"}], "good": "a", "bad": "b"}
            """)));
        Assert.Equal("conversation[0].from \"bot\" is not a known role; expected one mapped by roles: (human, gpt)", unmapped.Message);
    }

    [Fact]
    public void Orpo_chat_template_argilla_builds_the_prompt_from_chosen_and_cuts_answers_after_it()
    {
        var texts = Formatter("chat_template.argilla", RlType.Orpo, template: "chatml").Preference(Row("""
            {"system": "Be brief.",
             "chosen": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "good"}],
             "rejected": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "bad"}]}
            """));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n" +
                     "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n", texts.Prompt);
        Assert.Equal("good<|im_end|>\n", texts.Chosen);
        Assert.Equal("bad<|im_end|>\n", texts.Rejected);

        // A prompt field stands in for every user turn, as axolotl's get_prompt does.
        var prompted = Formatter("chat_template.argilla", RlType.Orpo, template: "chatml").Preference(Row("""
            {"prompt": "P", "chosen": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "good"}],
             "rejected": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "bad"}]}
            """));
        Assert.Equal("<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\n", prompted.Prompt);

        var odd = Assert.Throws<RowException>(() => Formatter("chat_template.argilla", RlType.Orpo).Preference(Row("""
            {"chosen": [{"role": "user", "content": "U1"}], "rejected": [{"role": "user", "content": "U1"}]}
            """)));
        Assert.Equal("field \"chosen\" holds 1 messages; chat_template.argilla needs user/assistant pairs", odd.Message);
    }

    [Fact]
    public void A_layout_the_trainer_does_not_define_is_refused_by_validate_and_by_prepare()
    {
        var e = Assert.Throws<InvalidInputException>(() => Formatter("chatml.icr", RlType.Kto));
        Assert.Equal("datasets[0].type: chatml.icr is not a layout axolotl defines for rl: kto; expected one of preference, kto, chat_template.default, " +
                     "chatml.argilla, chatml.argilla_chat, chatml.intel, chatml.prompt_pairs, chatml.ultra, llama3.argilla, llama3.argilla_chat, llama3.intel, llama3.prompt_pairs, llama3.ultra",
            e.Message);

        string config = ConfigTests.ConfigTestKit.Write("base_model: org/model\nrl: orpo\ndatasets:\n  - path: d.jsonl\n    type: chatml.intel\n");
        var (exit, _, err) = ConfigTests.ConfigTestKit.RunCli("validate", config);
        Assert.Equal(2, exit);
        Assert.Contains("datasets.0.type: chatml.intel is not a layout axolotl defines for rl: orpo; expected one of preference, chat_template.default, chat_template.argilla", err);
    }

    [Fact]
    public void Exact_deduplication_spans_all_datasets_and_test_datasets_and_is_reported_once()
    {
        var a = WriteJsonl(Chat(("user", "Hi"), ("assistant", "Yo.")), Chat(("user", "Hi"), ("assistant", "Hey.")), Chat(("user", "Hi"), ("assistant", "Yo.")));
        var b = WriteJsonl(Chat(("user", "Hi"), ("assistant", "Hey.")), Chat(("user", "Bye"), ("assistant", "Ciao.")));
        var test = WriteJsonl(Chat(("user", "Bye"), ("assistant", "Ciao.")), Chat(("user", "New"), ("assistant", "Row.")));
        var config = MakeConfig(a, "chat_template") with
        {
            Datasets = [new DatasetConfig { Path = a, Type = "chat_template" }, new DatasetConfig { Path = b, Type = "chat_template" }],
            TestDatasets = [new DatasetConfig { Path = test, Type = "chat_template" }],
            DatasetExactDeduplication = true,
        };
        var warnings = new List<string>();
        var data = Prepare(config, Llama3, warnings);
        // a: Yo, Hey (its second Yo dropped); b: Ciao (Hey dropped); test: New (Ciao is a training row).
        Assert.Equal(3, data.Train.Count);
        Assert.Single(data.Eval);
        Assert.Equal(3, data.Stats.DroppedDuplicate);
        Assert.Equal(4, data.Stats.RowsKept);
        Assert.Equal("dataset_exact_deduplication: dropped 3 row(s) equal to an earlier row (all datasets and test_datasets together)", Assert.Single(warnings));

        // Preference pairs are compared on prompt and both answers.
        var pairs = WriteJsonl(
            new JsonObject { ["prompt"] = "Q?", ["chosen"] = "A.", ["rejected"] = "B." },
            new JsonObject { ["prompt"] = "Q?", ["chosen"] = "A.", ["rejected"] = "C." },
            new JsonObject { ["prompt"] = "Q?", ["chosen"] = "A.", ["rejected"] = "B." });
        var prefs = Prepare(MakeConfig(pairs, "preference") with { Rl = RlType.Dpo, DatasetExactDeduplication = true }, Llama3);
        Assert.Equal(2, prefs.PreferenceTrain.Count);
        Assert.Equal(1, prefs.Stats.DroppedDuplicate);
    }
}
