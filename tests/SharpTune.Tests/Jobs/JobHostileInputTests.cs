using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace SharpTune.Tests.Jobs;

/// <summary>Refused requests: each asserts the status code, the problem named, and that neither the jobs folder nor the database changed.</summary>
public sealed class JobHostileInputTests
{
    private static async Task<JsonObject> Refused(string body, HttpStatusCode expected, long maxBody = 1 << 20)
    {
        // max-running 0: nothing would ever start, so any change on disk could only come from the refused request.
        await using var service = await JobServiceHarness.Start(maxRunning: 0, maxBody: maxBody);
        string before = JobKit.Snapshot(service.JobsDir);
        // Expect: 100-continue (as curl sends for large bodies): a body over the limit is refused before it is sent.
        using var message = new HttpRequestMessage(HttpMethod.Post, "/run") { Content = JobKit.Json(body) };
        message.Headers.ExpectContinue = true;
        using var response = await service.Client.SendAsync(message);
        var status = response.StatusCode;
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal(expected, status);
        Assert.Equal(before, JobKit.Snapshot(service.JobsDir));
        Assert.Empty(JobKit.Rows(service.JobsDir));
        return answer;
    }

    private static List<string> Problems(JsonObject answer) => answer["problems"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();

    [Fact]
    public async Task BadJson()
    {
        var answer = await Refused("{\"input\": {\"args\": {\"base_model\": ", HttpStatusCode.BadRequest);
        Assert.StartsWith("body: not valid JSON", Problems(answer).Single());
    }

    [Fact]
    public async Task DuplicateKeysAndLoneSurrogatesAreRefusedNotCrashed()
    {
        var answer = await Refused("{\"input\": {\"args\": {}, \"args\": {}}}", HttpStatusCode.BadRequest);
        Assert.Equal("body: duplicate key \"args\" in input; each key may appear once per object; expected {\"input\": {\"args\": {...config keys...}}}", Problems(answer).Single());
        answer = await Refused("{\"input\": {\"run_id\": \"a\\udc00\", \"args\": {}}}", HttpStatusCode.BadRequest);
        Assert.Equal("body: lone surrogate escape in the string at input.run_id; a \\uD800-\\uDFFF escape must be a high-low pair; expected {\"input\": {\"args\": {...config keys...}}}", Problems(answer).Single());
    }

    [Fact]
    public async Task FiftyMegabyteBody()
    {
        string huge = "{\"input\": {\"args\": {\"base_model\": \"" + new string('x', 50 * 1024 * 1024) + "\"}}}";
        var answer = await Refused(huge, HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains("larger than this server's limit of 1048576 bytes", answer["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task WrongTypesAreAllListed()
    {
        var request = JobKit.Sample(a =>
        {
            a["learning_rate"] = "fast";
            a["micro_batch_size"] = new JsonArray(2);
            a["lora_r"] = -4;
        });
        request["input"]!["run_id"] = 17;
        request["policy"] = new JsonObject { ["executionTimeout"] = "soon" };
        var problems = Problems(await Refused(request.ToJsonString(), HttpStatusCode.BadRequest));
        Assert.Equal(5, problems.Count);
        Assert.Contains("input.run_id: the number 17; expected a string", problems);
        Assert.Contains("policy.executionTimeout: \"soon\"; expected a whole number of milliseconds ≥ 1", problems);
        Assert.Contains(problems, p => p.Contains("learning_rate") && p.Contains("fast"));
        Assert.Contains(problems, p => p.Contains("micro_batch_size"));
        Assert.Contains(problems, p => p.Contains("lora_r") && p.Contains("-4"));
    }

    [Fact]
    public async Task MissingArgs()
    {
        var request = JobKit.Sample();
        request["input"]!.AsObject().Remove("args");
        Assert.Equal("input.args: missing; expected an object of config keys (docs/config.md)", Problems(await Refused(request.ToJsonString(), HttpStatusCode.BadRequest)).Single());
        Assert.StartsWith("input: missing", Problems(await Refused("{}", HttpStatusCode.BadRequest)).Single());
    }

    [Theory]
    [InlineData("run_id", "../../x")]
    [InlineData("run_id", "/etc")]
    [InlineData("run_id", "..")]
    [InlineData("run_id", "a/b")]
    [InlineData("user_id", "../escape")]
    [InlineData("user_id", ".hidden")]
    public async Task PathLikeIdsCannotEscapeTheJobsFolder(string field, string value)
    {
        var request = JobKit.Sample();
        request["input"]![field] = value;
        var problem = Problems(await Refused(request.ToJsonString(), HttpStatusCode.BadRequest)).Single();
        Assert.StartsWith($"input.{field}: ", problem);
        Assert.Contains("is not allowed", problem);
        Assert.False(Directory.Exists(Path.GetFullPath(Path.Combine(Path.GetTempPath(), "sharptune-tests", "x"))));
    }

    [Fact]
    public void ArtifactPathsResolveOnlyInsideTheJobFolder()
    {
        string root = TestPaths.TempDir();
        string job = Path.Combine(root, "user", "run");
        Directory.CreateDirectory(Path.Combine(job, "sub"));
        File.WriteAllText(Path.Combine(job, "sub", "a.txt"), "a");
        File.WriteAllText(Path.Combine(root, "secret.txt"), "s");
        File.CreateSymbolicLink(Path.Combine(job, "link.txt"), Path.Combine(root, "secret.txt"));
        Directory.CreateSymbolicLink(Path.Combine(job, "linkdir"), root);
        Assert.Equal(Path.Combine(job, "sub", "a.txt"), SharpTune.Jobs.JobOutput.ResolveArtifact(job, "sub/a.txt"));
        foreach (var bad in new[] { "../../secret.txt", "./sub/a.txt", "sub/../sub/a.txt", "/etc/passwd", "sub\\a.txt", "link.txt", "linkdir/secret.txt", "sub", "", "sub//a.txt" })
            Assert.Null(SharpTune.Jobs.JobOutput.ResolveArtifact(job, bad));
        Assert.Equal(["sub/a.txt"], SharpTune.Jobs.JobOutput.Artifacts(job).Select(a => a.Path));
    }

    [Fact]
    public async Task UnknownKeyTypoIsNamedWithTheKnownKey()
    {
        var request = JobKit.Sample(a => { a["lerning_rate"] = 0.001; a["num_epocs"] = 2; });
        var problems = Problems(await Refused(request.ToJsonString(), HttpStatusCode.BadRequest));
        Assert.Contains("input.args: unknown key 'lerning_rate' (did you mean 'learning_rate'?)", problems);
        Assert.Contains("input.args: unknown key 'num_epocs' (did you mean 'num_epochs'?)", problems);
    }

    [Fact]
    public async Task CrossKeyProblemsAndMissingFilesAreAllListed()
    {
        var request = JobKit.Sample(a => { a["warmup_ratio"] = 0.1; a["evals_per_epoch"] = 2; a["base_model"] = "./no/such/model"; });
        var problems = Problems(await Refused(request.ToJsonString(), HttpStatusCode.BadRequest));
        Assert.Contains(problems, p => p.Contains("warmup_steps: 1 and warmup_ratio: 0.1 are both set"));
        Assert.Contains(problems, p => p.Contains("eval_steps: 3 and evals_per_epoch: 2 are both set"));
        Assert.Equal(2, problems.Count);   // files are checked once the keys agree
    }

    [Fact]
    public async Task WandbKeyAndWebhookAreRefusedAndTheKeyIsNotEchoed()
    {
        var request = JobKit.Sample();
        request["input"]!["credentials"]!["wandb_api_key"] = "wandb-secret-value-99";
        request["webhook"] = "https://example.invalid/hook";
        var answer = await Refused(request.ToJsonString(), HttpStatusCode.BadRequest);
        var problems = Problems(answer);
        Assert.Contains(problems, p => p.StartsWith("input.credentials.wandb_api_key: Weights & Biases is not supported"));
        Assert.Contains(problems, p => p.StartsWith("webhook: not supported"));
        Assert.DoesNotContain("wandb-secret-value-99", answer.ToJsonString());
    }

    [Fact]
    public async Task WrongOrMissingKeyIs401AndOtherUsersJobsAre404()
    {
        var keys = new Dictionary<string, string> { ["alice-key-0001"] = "alice", ["bob-key-000002"] = "bob" };
        await using var service = await JobServiceHarness.Start(maxRunning: 0, keys: keys);
        using var alice = Clients.For(service.Server.Address, "alice-key-0001");
        using var bob = Clients.For(service.Server.Address, "bob-key-000002");
        using var nobody = Clients.For(service.Server.Address, null);
        using var wrong = Clients.For(service.Server.Address, "alice-key-0002");

        string before = JobKit.Snapshot(service.JobsDir);
        foreach (var client in new[] { nobody, wrong })
        {
            var (status, body) = await JobKit.Post(client, "/run", JobKit.Sample().ToJsonString());
            Assert.Equal(HttpStatusCode.Unauthorized, status);
            Assert.Contains("API key", body["error"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.Unauthorized, (await JobKit.Get(client, "/jobs")).Status);
        }
        Assert.Equal(before, JobKit.Snapshot(service.JobsDir));
        Assert.Equal(HttpStatusCode.OK, (await nobody.GetAsync("/health")).StatusCode);

        // A key decides the user: alice's job lands in alice/ whatever the request's user_id said (it may only repeat it).
        var mine = JobKit.Sample(runId: "alice-run");
        mine["input"]!["user_id"] = "bob";
        Assert.Equal(HttpStatusCode.Forbidden, (await JobKit.Post(alice, "/run", mine.ToJsonString())).Status);
        mine["input"]!.AsObject().Remove("user_id");
        var (accepted, job) = await JobKit.Post(alice, "/run", mine.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, accepted);
        string id = job["id"]!.GetValue<string>();
        Assert.True(File.Exists(Path.Combine(service.JobsDir, "alice", "alice-run", "config.yaml")));

        string afterSubmit = JobKit.Snapshot(service.JobsDir);
        foreach (var path in new[] { $"/status/{id}", $"/jobs/{id}/artifacts", $"/jobs/{id}/artifacts/config.yaml", $"/jobs/{id}/log", $"/stream/{id}" })
            Assert.Equal(HttpStatusCode.NotFound, (await bob.GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await JobKit.Post(bob, $"/cancel/{id}", "")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await JobKit.Post(bob, $"/retry/{id}", "")).Status);
        Assert.Empty((await JobKit.Get(bob, "/jobs")).Body["jobs"]!.AsArray());
        Assert.Equal(afterSubmit, JobKit.Snapshot(service.JobsDir));
        Assert.Equal("IN_QUEUE", (await JobKit.Get(alice, $"/status/{id}")).Body["status"]!.GetValue<string>());
        Assert.Single((await JobKit.Get(alice, "/jobs")).Body["jobs"]!.AsArray());

        // Artifact paths cannot leave the job folder, however they are spelled.
        // (HttpClient itself removes plain dot segments; the encoded forms reach the server as they are.)
        foreach (var path in new[] { "..%2F..%2Fx", "%2Fetc%2Fpasswd", "%2E%2E%2F%2E%2E%2F.sharptune-jobs.db" })
            Assert.Equal(HttpStatusCode.NotFound, (await alice.GetAsync($"/jobs/{id}/artifacts/{path}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync($"/jobs/{id}/artifacts/config.yaml")).StatusCode);

        // The same run_id again is a conflict, not an overwrite.
        Assert.Equal(HttpStatusCode.Conflict, (await JobKit.Post(alice, "/run", mine.ToJsonString())).Status);
        Assert.Equal(afterSubmit, JobKit.Snapshot(service.JobsDir));
    }

    [Fact]
    public async Task FiftyConcurrentSubmissionsAreAllAccountedFor()
    {
        await using var service = await JobServiceHarness.Start(maxRunning: 0);
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            JobKit.Post(service.Client, "/run", JobKit.Sample(runId: $"run-{i:D2}").ToJsonString())));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Status));
        var ids = answers.Select(a => a.Body["id"]!.GetValue<string>()).ToList();
        Assert.Equal(50, ids.Distinct().Count());
        var rows = JobKit.Rows(service.JobsDir);
        Assert.Equal(50, rows.Count);
        Assert.Equal(ids.Order(), rows.Select(r => r.Split(' ')[0]).Order());
        Assert.All(rows, r => Assert.Equal("IN_QUEUE", r.Split(' ')[1]));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"run-{i:D2}"), Directory.GetDirectories(Path.Combine(service.JobsDir, "user")).Select(Path.GetFileName).Order());
        var listed = (await JobKit.Get(service.Client, "/jobs")).Body["jobs"]!.AsArray();
        Assert.Equal(50, listed.Count);
        Assert.Equal(50, (await JobKit.Get(service.Client, "/health")).Body["jobs"]!["inQueue"]!.GetValue<int>());
    }
}
