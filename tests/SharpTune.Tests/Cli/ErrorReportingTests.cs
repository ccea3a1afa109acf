using System.CommandLine;
using SharpTune.Cli;

namespace SharpTune.Tests.Cli;

/// <summary>
/// Failures reach the user as one line in words with the exit code of the contract: 2 for bad input, 1 for the machine
/// (disk full, read-only, out of memory) or the unexpected; no .NET type names; --debug / SHARPTUNE_DEBUG=1 add the stack.
/// </summary>
public sealed class ErrorReportingTests
{
    public static TheoryData<Exception, string> MachineFailures => new()
    {
        { new IOException("No space left on device : '/data/run/.checkpoint-5.tmp-4242/model.safetensors'"),
            "disk full writing /data/run/checkpoint-5: free space on that disk or point output_dir at another one; checkpoints already saved are intact" },
        { new IOException("No space left on device : '/data/run/.metrics.jsonl.0123456789abcdef0123456789abcdef.tmp'"),
            "disk full writing /data/run/metrics.jsonl: free space on that disk or point output_dir at another one; checkpoints already saved are intact" },
        { new IOException("Read-only file system : '/mnt/ro/run/.checkpoint-1.old-77'"),
            "read-only file system writing /mnt/ro/run/checkpoint-1: point output_dir at a writable folder" },
        { new UnauthorizedAccessException("Access to the path '/srv/run/config.json.tmp-99' is denied."),
            "permission denied writing /srv/run/config.json: make the folder writable for this user or point output_dir at another one" },
        { new IOException("No space left on device : '/data/run/.checkpoint-5.tmp-0123456789abcdef0123456789abcdef-4242/optimizer.safetensors'"),
            "disk full writing /data/run/checkpoint-5: free space on that disk or point output_dir at another one; checkpoints already saved are intact" },
        { new IOException("No space left on device : '/data/run/merged/.model.safetensors.tmp-0123456789abcdef0123456789abcdef-4242'"),
            "disk full writing /data/run/merged/model.safetensors: free space on that disk or point output_dir at another one; checkpoints already saved are intact" },
        { new OutOfMemoryException(),
            "out of memory: lower micro_batch_size or sequence_len, turn on gradient_checkpointing, or use an adapter (adapter: lora); sharptune plan CONFIG forecasts the peak" },
        { new System.Runtime.InteropServices.ExternalException("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 81604378624 bytes."),
            "out of memory: lower micro_batch_size or sequence_len, turn on gradient_checkpointing, or use an adapter (adapter: lora); sharptune plan CONFIG forecasts the peak" },
        { new AggregateException(new InvalidOperationException("Operation is not valid due to the current state of the object.")),
            "Operation is not valid due to the current state of the object. (an unexpected failure; rerun with --debug or SHARPTUNE_DEBUG=1 for the stack trace, and report it)" },
    };

    private static (int Code, string Err) Invoke(Exception failure, bool debug)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var console = new CliConsole(stdout, stderr) { Debug = debug };
        var command = new Command("fails");
        console.Bind(command, _ => throw failure);
        var root = new RootCommand { command };
        int code = root.Parse(["fails"]).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        return (code, stderr.ToString());
    }

    [Theory]
    [MemberData(nameof(MachineFailures))]
    public void AFailureOfTheMachineIsOneLineInWordsWithExitCode1(Exception failure, string expected)
    {
        var (code, err) = Invoke(failure, debug: false);
        Assert.Equal(1, code);
        Assert.Equal($"error: {expected}\n", err);
        Assert.DoesNotContain("Exception", err);
    }

    [Theory]
    [InlineData("/mnt/ro/run/checkpoint-3", true)]
    [InlineData("/mnt/ro", true)]
    [InlineData("/mnt/rofoo/run", false)]
    [InlineData("/mnt/ro/rw here/x", false)]
    [InlineData("/home/run", false)]
    public void AReadOnlyMountIsFoundByTheLongestMountPointHoldingThePath(string path, bool readOnly)
    {
        const string table = "overlay / overlay rw,relatime 0 0\ntmpfs /mnt/ro tmpfs ro,relatime,size=24576k 0 0\n" +
                             "tmpfs /mnt/ro/rw\\040here tmpfs rw 0 0\ntmpfs /mnt/rofoo tmpfs rw 0 0\n";
        Assert.Equal(readOnly, FailureText.IsOnReadOnlyMount(path, table));
    }

    [Fact]
    public void AccessDeniedOnAnIoCallIsPermissionInWordsNotTheExceptionText()
    {
        var (code, err) = Invoke(new IOException("Access to the path '/nonexistent-mount/run/.checkpoint-3.tmp-12' is denied."), debug: false);
        Assert.Equal((1, "error: permission denied writing /nonexistent-mount/run/checkpoint-3: make the folder writable for this user or point output_dir at another one\n"), (code, err));
    }

    [Fact]
    public void BadInputIsExitCode2AndDebugAddsTheStackTrace()
    {
        var (code, err) = Invoke(new InvalidInputException("config.yaml: lora_r: -1 is invalid; expected an integer ≥ 1"), debug: false);
        Assert.Equal((2, "error: config.yaml: lora_r: -1 is invalid; expected an integer ≥ 1\n"), (code, err));
        var (debugCode, debugErr) = Invoke(new IOException("No space left on device : '/d/run/x.safetensors'"), debug: true);
        Assert.Equal(1, debugCode);
        var lines = debugErr.Split('\n');
        Assert.Equal("error: disk full writing /d/run/x.safetensors: free space on that disk or point output_dir at another one; checkpoints already saved are intact", lines[0]);
        Assert.StartsWith("System.IO.IOException: No space left on device", lines[1]);
        Assert.Contains("at SharpTune.Tests.Cli.ErrorReportingTests", debugErr);
    }

    [Fact]
    public void DebugIsAFlagAnywhereOnTheCommandLine()
    {
        string missing = Path.Combine(TestPaths.TempDir(), "missing.yaml");
        var plain = CliRunner.Run("validate", missing);
        Assert.Equal((2, $"error: {missing}: config file not found\n"), (plain.Code, plain.Err));
        var debug = CliRunner.Run("validate", missing, "--debug");
        Assert.Equal(2, debug.Code);
        Assert.StartsWith($"error: {missing}: config file not found\nSharpTune.InvalidInputException: ", debug.Err);
    }
}
