using System.CommandLine;
using System.Text.Json.Nodes;
using SharpTune.Jobs;
using SharpTune.Serving;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune jobs serve|submit|status|logs|cancel|retry|list`: the job service and its client.</summary>
public static class JobsCommand
{
    public static Command Create(CliConsole console)
    {
        var command = new Command("jobs", "Fine-tuning job service (RunPod-style API, SQLite queue, dashboard) and its client.");
        command.Subcommands.Add(Serve(console));
        command.Subcommands.Add(Submit(console));
        command.Subcommands.Add(Simple(console, "status", "Print a job's status (JSON).", (c, id) => c.Status(id)));
        command.Subcommands.Add(Simple(console, "cancel", "Cancel a job (a running one checkpoints, then stops).", (c, id) => c.Cancel(id)));
        command.Subcommands.Add(Simple(console, "retry", "Re-queue a failed, cancelled or timed-out job (resumes from its newest checkpoint).", (c, id) => c.Retry(id)));
        command.Subcommands.Add(Logs(console));
        command.Subcommands.Add(List(console));
        return command;
    }

    private static Option<string> UrlOption() => new("--url")
    {
        Description = "Job service address (default: $SHARPTUNE_JOBS_URL, else http://127.0.0.1:8001).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SHARPTUNE_JOBS_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:8001",
    };

    private static Option<string?> KeyOption() => new("--api-key") { Description = "Bearer key (default: $SHARPTUNE_API_KEY)." };

    private static JobClient Client(ParseResult parse, Option<string> url, Option<string?> key)
    {
        string address = parse.GetValue(url)!;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InvalidInputException($"--url: '{address}' is not an http(s) address");
        return new JobClient(uri, parse.GetValue(key) ?? (Environment.GetEnvironmentVariable("SHARPTUNE_API_KEY") is { Length: > 0 } k ? k : null));
    }

    private static Command Serve(CliConsole console)
    {
        var host = new Option<string>("--host") { Description = "Address to bind (loopback by default; 0.0.0.0 exposes the server).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port.", DefaultValueFactory = _ => 8001 };
        var jobsDir = new Option<string>("--jobs-dir") { Description = "Folder of the queue database and of every job's output (USER/RUN_ID).", DefaultValueFactory = _ => "jobs" };
        var apiKey = KeyOption();
        var keysFile = new Option<string?>("--keys-file") { Description = "JSON object mapping each API key to a user; users see only their own jobs." };
        var maxRunning = new Option<int>("--max-running") { Description = "Jobs trained at the same time (0: queue only, start none).", DefaultValueFactory = _ => 1 };
        var grace = new Option<double>("--cancel-grace") { Description = "Seconds a cancelled job may take to checkpoint before it is killed.", DefaultValueFactory = _ => 30 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body in bytes.", DefaultValueFactory = _ => 1 << 20 };
        var command = new Command("serve", "Run the job service: /run, /runsync, /status, /stream, /cancel, /retry, /health, artifacts and the dashboard at /.")
        {
            host, port, jobsDir, apiKey, keysFile, maxRunning, grace, maxBody,
        };
        console.Bind(command, parse =>
        {
            var options = new JobServiceOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                JobsDir = parse.GetValue(jobsDir)!,
                ApiKey = parse.GetValue(apiKey) ?? (parse.GetValue(keysFile) is null && Environment.GetEnvironmentVariable("SHARPTUNE_API_KEY") is { Length: > 0 } k ? k : null),
                Keys = parse.GetValue(keysFile) is { } file ? JobKeys.Load(file) : null,
                MaxRunning = parse.GetValue(maxRunning),
                CancelGrace = TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(grace))),
                MaxRequestBodyBytes = parse.GetValue(maxBody),
            }.Validated();
            string auth = options.Keys is not null ? $", {options.Keys.Count} keys" : options.ApiKey is not null ? ", API key required" : ", no API key";
            return ServiceRun.Serve(new JobServer(options, console.Error), console,
                address => $"jobs: serving on {address} (jobs in {Path.GetFullPath(options.JobsDir)}, {options.MaxRunning} at a time{auth}); dashboard at {address}; Ctrl+C or SIGTERM stops",
                "jobs: server stopped");
        });
        return command;
    }

    private static Command Submit(CliConsole console)
    {
        var file = new Argument<string>("file") { Description = "Job request ({\"input\": {...}}) or a config (.json or .yaml) to send as input.args." };
        var wait = new Option<bool>("--wait") { Description = "Follow the job's log until it ends; exit 0 only when it COMPLETED." };
        var url = UrlOption();
        var key = KeyOption();
        var command = new Command("submit", "Submit a job; prints its id.") { file, wait, url, key };
        console.Bind(command, parse =>
        {
            var request = JobClient.RequestFromFile(parse.GetValue(file)!);
            using var client = Client(parse, url, key);
            var answer = client.Submit(request).GetAwaiter().GetResult();
            string id = answer["id"]!.GetValue<string>();
            foreach (var w in answer["warnings"] as JsonArray ?? []) console.Error.WriteLine($"warning: {w}");
            console.Out.WriteLine(id);
            console.Out.Flush();
            if (!parse.GetValue(wait)) return 0;
            string status = client.Follow(id, (name, data) => Print(console, name, data)).GetAwaiter().GetResult();
            console.Out.WriteLine(client.Status(id).GetAwaiter().GetResult().ToJsonString());
            return status == "COMPLETED" ? 0 : 1;
        });
        return command;
    }

    private static void Print(CliConsole console, string name, JsonObject data)
    {
        if (name == "log") console.Out.WriteLine(data["line"]?.GetValue<string>());
        else if (name is "state" or "end") console.Error.WriteLine($"jobs: {data["status"]}{(data["error"] is { } e ? $" ({e})" : "")}");
        console.Out.Flush();
    }

    private static Command Simple(CliConsole console, string name, string description, Func<JobClient, string, Task<JsonObject>> call)
    {
        var id = new Argument<string>("id") { Description = "Job id." };
        var url = UrlOption();
        var key = KeyOption();
        var command = new Command(name, description) { id, url, key };
        console.Bind(command, parse =>
        {
            using var client = Client(parse, url, key);
            console.Out.WriteLine(call(client, parse.GetValue(id)!).GetAwaiter().GetResult().ToJsonString());
            return 0;
        });
        return command;
    }

    private static Command Logs(CliConsole console)
    {
        var id = new Argument<string>("id") { Description = "Job id." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Stream the log (from the start) until the job ends." };
        var tail = new Option<int>("--tail") { Description = "Lines from the end of the log (without --follow).", DefaultValueFactory = _ => 200 };
        var url = UrlOption();
        var key = KeyOption();
        var command = new Command("logs", "Print a job's train.log.") { id, follow, tail, url, key };
        console.Bind(command, parse =>
        {
            using var client = Client(parse, url, key);
            string job = parse.GetValue(id)!;
            if (parse.GetValue(follow))
            {
                client.Follow(job, (name, data) => Print(console, name, data)).GetAwaiter().GetResult();
                return 0;
            }
            foreach (var line in client.Log(job, parse.GetValue(tail)).GetAwaiter().GetResult()["lines"] as JsonArray ?? [])
                console.Out.WriteLine(line?.GetValue<string>());
            return 0;
        });
        return command;
    }

    private static Command List(CliConsole console)
    {
        var url = UrlOption();
        var key = KeyOption();
        var command = new Command("list", "List the jobs this key may see, newest first.") { url, key };
        console.Bind(command, parse =>
        {
            using var client = Client(parse, url, key);
            var jobs = client.List().GetAwaiter().GetResult()["jobs"] as JsonArray ?? [];
            console.Out.WriteLine($"{"ID",-36}  {"STATUS",-11}  {"USER",-12}  {"RUN",-24}  PROGRESS");
            foreach (var j in jobs.OfType<JsonObject>())
            {
                var p = j["progress"]!;
                string progress = p["total_steps"]!.GetValue<int>() > 0 ? $"{p["step"]}/{p["total_steps"]}" : $"{p["step"]}";
                console.Out.WriteLine($"{j["id"],-36}  {j["status"],-11}  {j["user_id"],-12}  {j["run_id"],-24}  {progress}");
            }
            return 0;
        });
        return command;
    }
}
