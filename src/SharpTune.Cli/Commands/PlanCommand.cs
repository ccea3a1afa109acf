using System.CommandLine;
using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Planning;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune plan CONFIG [--gpu NAME] [--nproc N] [--zero-stage S]`: predicted peak memory by component, before a run starts.</summary>
public static class PlanCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "Training config (.yaml, .json, or a JSON job request)." };
        var set = new Option<string[]>("--set") { Description = "Override a config key (repeatable), e.g. --set micro_batch_size=4." };
        var gpu = new Option<string?>("--gpu") { Description = $"Device to plan for: {string.Join(", ", PlanDevice.Names)} (default: the config's device, else cpu)." };
        var nproc = new Option<int>("--nproc") { Description = "Data-parallel processes, one device each.", DefaultValueFactory = _ => 1 };
        var zero = new Option<int?>("--zero-stage") { Description = "ZeRO sharding over --nproc: 0 off, 1 optimizer state, 2 + gradients, 3 + weights (default 0)." };
        var command = new Command("plan", "Predict a run's peak memory per device, by component, and the largest batch × sequence that fits.") { config, set, gpu, nproc, zero };
        console.Bind(command, parse =>
        {
            string path = parse.GetValue(config)!;
            var cfg = ConfigLoader.Load(path, parse.GetValue(set) ?? [], w => console.Error.WriteLine($"warning: {w}"));
            var model = LoadModelConfig(path, cfg);
            int processes = parse.GetValue(nproc);
            if (processes < 1) throw new InvalidInputException($"--nproc: {processes} must be ≥ 1");
            int stage = parse.GetValue(zero) ?? 0;
            if (stage is < 0 or > 3) throw new InvalidInputException($"--zero-stage: {stage} is not allowed; use 0, 1, 2 or 3");
            var forecast = parse.GetValue(gpu) is { } name
                ? new MemoryPlanner(cfg, model, PlanDevice.Parse(name, Modeling.PrecisionPolicy.PrefersBf16(TorchSharp.torch.CPU)), processes, stage).Forecast()
                : processes == 1 && stage == 0
                    ? ForecastReport.ForConfigDevice(cfg, model, Modeling.PrecisionPolicy.PrefersBf16(TorchSharp.torch.CPU))
                    : new MemoryPlanner(cfg, model, PlanDevice.Parse("cpu", Modeling.PrecisionPolicy.PrefersBf16(TorchSharp.torch.CPU)), processes, stage).Forecast();
            foreach (var line in ForecastReport.Lines(forecast)) console.Out.WriteLine(line);
            return 0;
        });
        return command;
    }

    /// <summary>The one config reader on the model folder (base_model_config when set, else base_model).</summary>
    public static ModelConfig LoadModelConfig(string path, TrainConfig cfg) =>
        ModelFamilies.CheckLocal(path, "base_model_config", cfg.BaseModelConfig)
        ?? ModelFamilies.CheckLocal(path, "base_model", cfg.BaseModel)
        ?? throw new InvalidInputException($"{path}: base_model '{cfg.BaseModel}' is not a local model folder; the plan reads its config.json (run `sharptune download {cfg.BaseModel}` first)");
}
