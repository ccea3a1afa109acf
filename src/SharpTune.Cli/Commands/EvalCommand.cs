using System.CommandLine;
using SharpTune.Config;
using SharpTune.Inference;
using SharpTune.Files;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune eval CONFIG`: validation loss/perplexity and JSONL eval tasks for the config's model (+ adapter).</summary>
public static class EvalCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "Training config (.yaml or .json): base_model, lora_model_dir / output_dir, sequence_len, test_datasets." };
        var set = new Option<string[]>("--set") { Description = "Override a config key (repeatable), e.g. --set base_model=./merged." };
        var data = new Option<string[]>("--data") { Description = "Validation text: .jsonl with a \"text\" field per row, or .txt (repeatable). Default: the config's test_datasets of that shape." };
        var tasks = new Option<string[]>("--task") { Description = "Eval task .jsonl (repeatable): multiple choice {context, choices, gold} or generation {prompt, answer}." };
        var adapter = new Option<string?>("--adapter") { Description = "Adapter folder. Default: lora_model_dir, else output_dir when it holds adapter_config.json." };
        var output = new Option<string?>("--output") { Description = "Results JSON. Default: OUTPUT_DIR/eval_results.json." };
        var batch = new Option<int>("--batch-size") { Description = "Rows scored per forward pass.", DefaultValueFactory = _ => 8 };
        var command = new Command("eval", "Measure validation loss/perplexity and run multiple-choice / exact-match eval tasks.");
        command.Arguments.Add(config);
        foreach (var option in new Option[] { set, data, tasks, adapter, output, batch }) command.Options.Add(option);
        console.Bind(command, parse =>
        {
            string path = parse.GetValue(config)!;
            var cfg = ConfigLoader.Load(path, parse.GetValue(set) ?? [], w => console.Error.WriteLine($"warning: {w}"));
            if (cfg.BaseModel is null) throw new InvalidInputException($"{path}: base_model is not set");
            if (parse.GetValue(batch) < 1) throw new InvalidInputException($"--batch-size: {parse.GetValue(batch)} is invalid; expected ≥ 1");
            var adapterDir = parse.GetValue(adapter) ?? cfg.LoraModelDir
                ?? (cfg.Adapter is not null && File.Exists(Path.Combine(cfg.OutputDir, "adapter_config.json")) ? cfg.OutputDir : null);
            var dataFiles = parse.GetValue(data) is { Length: > 0 } d ? d : DefaultDataFiles(cfg);
            var taskFiles = (parse.GetValue(tasks) ?? []).Select(EvalTask.Load).ToArray();
            var texts = dataFiles.SelectMany(f => EvalData.ReadTexts(f)).ToArray();
            if (texts.Length == 0 && taskFiles.Length == 0)
                throw new InvalidInputException($"{path}: nothing to evaluate; give --data FILE.jsonl (rows with \"text\") or --task FILE.jsonl, or set test_datasets to a local .jsonl text file");

            var generator = ModelLoading.Generator(cfg.BaseModel, adapterDir, cfg.TokenizerConfig, cfg.Device);
            using var weights = generator.Model;
            var evaluator = new Evaluator(generator.Model, generator.Tokenizer, new GenerationDefaults(generator.EosTokenIds), parse.GetValue(batch));
            var validation = texts.Length > 0 ? evaluator.Perplexity(texts, cfg.SequenceLen) : null;
            var results = taskFiles.Select(evaluator.Run).ToArray();
            var report = new EvalReport(cfg.BaseModel, adapterDir, validation, results);

            var outPath = parse.GetValue(output) ?? Path.Combine(cfg.OutputDir, "eval_results.json");
            AtomicFile.WriteText(outPath, report.ToJson());
            console.Out.Write(report.ToTable());
            console.Out.WriteLine($"results written to {outPath}");
            return 0;
        });
        return command;
    }

    /// <summary>test_datasets that are local .jsonl/.txt files (rows with a "text" field, or the dataset's field).</summary>
    private static string[] DefaultDataFiles(TrainConfig cfg) =>
        cfg.TestDatasets.Select(t => t.Path).OfType<string>()
            .Where(p => File.Exists(p) && (p.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || p.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)))
            .ToArray();
}
