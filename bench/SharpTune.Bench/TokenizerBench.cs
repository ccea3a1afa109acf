using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SharpTune.Tokenization;

namespace SharpTune.Bench;

/// <summary>
/// Encode throughput of <see cref="HfTokenizer"/> on the llama3 tokenizer and the reference test corpus, one thread and
/// <see cref="HfTokenizer.EncodeBatch"/>, against the JS reference <c>@huggingface/tokenizers</c> run by node on the same
/// corpus (tools/tokenizer-reference/throughput.mjs). Target: single-thread MB/s ≥ 2× the reference.
/// </summary>
public static class TokenizerBench
{
    public const string Mode = "tokenizer";
    public const string Usage = "tokenizer [seconds=3] [name=llama3]   HfTokenizer encode MB/s, tokens/s (1 thread, EncodeBatch) vs the JS reference via node";
    private const double TargetRatio = 2.0;

    public static int Run(string[] args)
    {
        double minSeconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        string name = args.Length > 1 ? args[1] : "llama3";
        var root = BenchSupport.RepoRoot();
        var dataDir = Path.Combine(root, "tests", "SharpTune.Tests", "Tokenization", "data");
        var tokenizerDir = Path.Combine(dataDir, "tokenizers", name);
        var corpusPath = Path.Combine(dataDir, "corpus.json");
        var tokenizer = HfTokenizer.FromDirectory(tokenizerDir);
        var corpus = JsonSerializer.Deserialize<string[]>(File.ReadAllText(corpusPath)) ?? [];
        long bytesPerPass = corpus.Sum(t => (long)Encoding.UTF8.GetByteCount(t));
        Console.WriteLine(BenchSupport.LoadLine());
        Console.WriteLine($"tokenizer: {name} ({tokenizer.VocabSize} ids); corpus: {corpus.Length} strings, {bytesPerPass / 1e3:F1} kB UTF-8 per pass");

        foreach (var text in corpus) tokenizer.Encode(text);   // warm-up: JIT and merge caches
        var single = Measure(minSeconds, bytesPerPass, () => corpus.Sum(t => (long)tokenizer.Encode(t).Count));
        var batch = Measure(minSeconds, bytesPerPass, () => tokenizer.EncodeBatch(corpus).Sum(ids => (long)ids.Count));
        Console.WriteLine($"  SharpTune 1 thread:    {single.MbPerSecond,7:F2} MB/s  {single.TokensPerSecond,10:F0} tokens/s  ({single.Passes} passes)");
        Console.WriteLine($"  SharpTune EncodeBatch: {batch.MbPerSecond,7:F2} MB/s  {batch.TokensPerSecond,10:F0} tokens/s  ({batch.Passes} passes, {Environment.ProcessorCount} cores)");

        var reference = RunReference(root, tokenizerDir, corpusPath, minSeconds);
        if (reference is { } js)
        {
            Console.WriteLine($"  JS reference (node):   {js.MbPerSecond,7:F2} MB/s  {js.TokensPerSecond,10:F0} tokens/s");
            Console.WriteLine($"  ratio 1 thread / JS:   {single.MbPerSecond / js.MbPerSecond:F2}x (target ≥ {TargetRatio:F0}x)");
            Console.WriteLine($"  ratio EncodeBatch / JS: {batch.MbPerSecond / js.MbPerSecond:F2}x");
        }
        Console.WriteLine(BenchSupport.LoadLine());
        return 0;
    }

    private sealed record Throughput(int Passes, double MbPerSecond, double TokensPerSecond);

    private static Throughput Measure(double minSeconds, long bytesPerPass, Func<long> pass)
    {
        var watch = Stopwatch.StartNew();
        long tokens = 0;
        int passes = 0;
        do
        {
            tokens += pass();
            passes++;
        } while (watch.Elapsed.TotalSeconds < minSeconds);
        double seconds = watch.Elapsed.TotalSeconds;
        return new Throughput(passes, bytesPerPass * passes / 1e6 / seconds, tokens / seconds);
    }

    /// <summary>Runs the node script; null (with the reason printed) when node or its modules are missing.</summary>
    private static Throughput? RunReference(string root, string tokenizerDir, string corpusPath, double minSeconds)
    {
        var scriptDir = Path.Combine(root, "tools", "tokenizer-reference");
        if (!Directory.Exists(Path.Combine(scriptDir, "node_modules", "@huggingface", "tokenizers")))
        {
            Console.WriteLine($"  JS reference skipped: {scriptDir}/node_modules has no @huggingface/tokenizers (run `npm install` there)");
            return null;
        }
        var start = new ProcessStartInfo("node") { UseShellExecute = false, RedirectStandardOutput = true, WorkingDirectory = scriptDir };
        foreach (var a in new[] { "throughput.mjs", tokenizerDir, corpusPath, minSeconds.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        Process? node;
        try { node = Process.Start(start); }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.WriteLine($"  JS reference skipped: node could not start ({e.Message})");
            return null;
        }
        if (node is null) { Console.WriteLine("  JS reference skipped: node did not start"); return null; }
        using (node)
        {
            var output = node.StandardOutput.ReadToEnd();
            node.WaitForExit();
            if (node.ExitCode != 0) { Console.WriteLine($"  JS reference skipped: node exited {node.ExitCode}"); return null; }
            using var doc = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            var r = doc.RootElement;
            return new Throughput(r.GetProperty("passes").GetInt32(), r.GetProperty("mb_per_second").GetDouble(), r.GetProperty("tokens_per_second").GetDouble());
        }
    }
}
