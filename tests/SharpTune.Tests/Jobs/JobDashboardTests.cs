using System.Text.Json.Nodes;

namespace SharpTune.Tests.Jobs;

/// <summary>The dashboard in a real browser (headless chromium over the DevTools protocol) against a server with one finished job.</summary>
public sealed class JobDashboardTests
{
    [SkippableFact]
    public async Task DashboardDrawsOneLossPointPerLoggedStepAndShowsCompleted()
    {
        TestPaths.Require(File.Exists(HeadlessChromium.Executable), $"{HeadlessChromium.Executable} is missing (tools/install-test-deps.sh installs chromium as root)");
        await using var service = await JobServiceHarness.Start();
        var request = JobKit.Sample(a => { a["max_steps"] = 5; a["eval_steps"] = 2; }, "dashboard-run");
        string id = (await JobKit.Post(service.Client, "/run", request.ToJsonString())).Body["id"]!.GetValue<string>();
        var (last, _) = await JobKit.WaitFor(service.Client, id);
        Assert.Equal("COMPLETED", last["status"]!.GetValue<string>());
        var metrics = (await JobKit.Get(service.Client, $"/jobs/{id}/metrics")).Body["metrics"]!.AsArray();
        int logged = metrics.Count(m => m!.AsObject().ContainsKey("loss"));
        int evals = metrics.Count(m => m!.AsObject().ContainsKey("eval_loss"));
        Assert.Equal(5, logged);

        // The key travels in the fragment, which the browser never sends to the server.
        await using var browser = await HeadlessChromium.Open($"{service.Server.Address}?job={id}#key={JobServiceHarness.AdminKey}");
        await browser.WaitUntil("document.body.getAttribute('data-loaded') === 'COMPLETED'");
        Assert.Equal("COMPLETED", (await browser.Evaluate("document.getElementById('state').textContent"))!.GetValue<string>());
        Assert.Equal(logged.ToString(), (await browser.Evaluate("document.getElementById('loss-chart').getAttribute('data-points')"))!.GetValue<string>());
        Assert.Equal(logged, (await browser.Evaluate("document.querySelectorAll('#loss-chart circle.pt').length"))!.GetValue<int>());
        Assert.Equal(logged, (await browser.Evaluate("document.querySelectorAll('#lr-chart circle.pt').length"))!.GetValue<int>());
        Assert.Equal(evals, (await browser.Evaluate("document.querySelectorAll('#eval-chart circle.pt').length"))!.GetValue<int>());
        var steps = (await browser.Evaluate("[...document.querySelectorAll('#loss-chart circle.pt')].map(c => +c.getAttribute('data-step'))"))!.AsArray();
        Assert.Equal([1, 2, 3, 4, 5], steps.Select(s => s!.GetValue<int>()));
        Assert.Contains("step 5/5", (await browser.Evaluate("document.getElementById('log').textContent"))!.GetValue<string>());
        Assert.True((await browser.Evaluate("[...document.querySelectorAll('#artifacts a')].some(a => a.dataset.path === 'adapter_model.safetensors')"))!.GetValue<bool>());
        Assert.True((await browser.Evaluate("document.getElementById('cancel').hidden"))!.GetValue<bool>());
        string shot = Path.Combine(AppContext.BaseDirectory, "jobs-dashboard.png");
        await File.WriteAllBytesAsync(shot, await browser.Screenshot());
        Assert.True(new FileInfo(shot).Length > 1000);

        // The job list (same key, kept by the page) shows the job and its state.
        await browser.Navigate(service.Server.Address.ToString());
        await browser.WaitUntil($"document.querySelector('tr[data-job=\"{id}\"]') !== null");
        Assert.Equal("COMPLETED", (await browser.Evaluate($"document.querySelector('tr[data-job=\"{id}\"]').dataset.state"))!.GetValue<string>());
        await File.WriteAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "jobs-dashboard-list.png"), await browser.Screenshot());
    }
}
