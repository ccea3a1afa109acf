using System.CommandLine;
using System.Globalization;
using SharpTune.Config;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune validate CONFIG [--set k=v ...]`: load and check a config (and the files it names) without training.</summary>
public static class ValidateCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "Training config (.yaml, .json, or a JSON job request)." };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a config key, typed like the key: --set learning_rate=1e-4, --set datasets.0.path=x.jsonl (repeatable).",
        };
        var command = new Command("validate", "Check a training config and the files it names, without training.");
        command.Arguments.Add(config);
        command.Options.Add(set);
        console.Bind(command, parse =>
        {
            string path = parse.GetValue(config)!;
            var cfg = ConfigLoader.Load(path, parse.GetValue(set) ?? [], w => console.Error.WriteLine($"warning: {w}"));
            ConfigChecks.CheckFiles(cfg, path);
            var model = ModelFamilies.CheckLocal(path, "base_model", cfg.BaseModel);
            ModelFamilies.CheckLocal(path, "base_model_config", cfg.BaseModelConfig);
            // The same checks train makes before its first step (Training.Preflight), as far as this machine holds the inputs.
            if (model is not null) Training.Preflight.CheckModel(cfg, model, path);
            string configDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string? notLocal = Training.Preflight.DataNotLocal(cfg, configDir);
            var data = notLocal is null
                ? Training.Preflight.PrepareData(cfg, Tokenization.HfTokenizer.FromDirectory(cfg.TokenizerConfig ?? cfg.BaseModel!), configDir,
                    w => console.Error.WriteLine($"warning: {w}"), path, new Data.DataOptions { UseCache = false })
                : null;
            foreach (var line in Summary(cfg, model)) console.Out.WriteLine(line);
            if ((ModelFamilies.CheckLocal(path, "base_model_config", cfg.BaseModelConfig) ?? model) is { } planned)
            {
                // The same forecast as `sharptune plan`, for the device the config names.
                var forecast = Planning.ForecastReport.ForConfigDevice(cfg, planned, Modeling.PrecisionPolicy.PrefersBf16(TorchSharp.torch.CPU));
                foreach (var line in Planning.ForecastReport.Lines(forecast)) console.Out.WriteLine(line);
                if (!forecast.Fits)
                    console.Error.WriteLine($"warning: predicted peak {Planning.PlanDevice.Format(forecast.PeakBytes)} exceeds {forecast.Device.Name}'s {Planning.PlanDevice.Format(forecast.Device.CapacityBytes)}" +
                        (forecast.LargestFits.Count > 0 ? $"; largest that fits: {string.Join(", ", forecast.LargestFits.Select(x => $"micro_batch_size {x.MicroBatchSize} × sequence_len {x.SequenceLen}"))}" : "") +
                        " (sharptune plan CONFIG --gpu NAME for other devices)");
            }
            console.Out.WriteLine(data is null ? $"data        not checked here: {notLocal}"
                : $"data        {data.Stats.TrainRows} train rows, {data.Stats.EvalRows} eval rows, {data.Stats.TrainableTokens:N0} trainable tokens");
            console.Out.WriteLine("config OK");
            return 0;
        });
        return command;
    }

    private static IEnumerable<string> Summary(TrainConfig c, ModelConfig? model)
    {
        static string N(double x) => x.ToString("G6", CultureInfo.InvariantCulture).Replace('E', 'e');
        static string S(Enum e) => ConfigWriter.Scalar(e);
        yield return $"model       {c.BaseModel} ({(model is not null ? $"local folder, {model.ModelType}" : "Hugging Face repo id")})";
        foreach (var (d, i) in c.Datasets.Select((d, i) => (d, i)))
            yield return $"dataset {i}   {d.Path} (type {d.Type}{(d.Split != "train" ? $", split {d.Split}" : "")})";
        foreach (var (d, i) in c.PretrainingDataset.Select((d, i) => (d, i)))
            yield return $"pretraining {i} {d.Path} (streamed{(d.Split != "train" ? $", split {d.Split}" : "")})";
        foreach (var (d, i) in c.TestDatasets.Select((d, i) => (d, i)))
            yield return $"test set {i}  {d.Path} (type {d.Type})";
        if (c.ValSetSize > 0) yield return $"validation  val_set_size {N(c.ValSetSize)}";
        yield return c.Adapter switch
        {
            null => "adapter     none (full fine-tuning)",
            var a => $"adapter     {S(a.Value)} r={c.LoraR} alpha={c.LoraAlpha} dropout={N(c.LoraDropout)}" +
                     $" targets={(c.LoraTargetLinear ? "all linear" : c.LoraTargetModules.Count == 0 ? "(model default)" : string.Join(",", c.LoraTargetModules))}" +
                     (c.PeftUseDora ? " dora" : "") + (c.PeftUseRslora ? " rslora" : "") +
                     (c.LoadIn4bit ? $" 4bit={S(c.Bnb4bitQuantType)}" : "") + (c.LoadIn8bit ? " 8bit" : ""),
        };
        if (c.Rl is { } rl) yield return $"objective   {S(rl)} beta={N(c.RlBeta)}";
        yield return $"batch       micro_batch_size={c.MicroBatchSize} gradient_accumulation_steps={c.GradientAccumulationSteps} sequence_len={c.SequenceLen}{(c.SamplePacking ? " packed" : "")}";
        string length = c.MaxSteps is >= 1 ? $"max_steps={c.MaxSteps}" : $"num_epochs={N(c.NumEpochs)}";
        string warmup = c.WarmupSteps != null ? $" warmup_steps={c.WarmupSteps}" : c.WarmupRatio != null ? $" warmup_ratio={N(c.WarmupRatio.Value)}" : "";
        yield return $"steps       {length} learning_rate={N(c.LearningRate)} lr_scheduler={S(c.LrScheduler)}{warmup} optimizer={S(c.Optimizer)}";
        yield return $"output_dir  {c.OutputDir}";
    }
}
