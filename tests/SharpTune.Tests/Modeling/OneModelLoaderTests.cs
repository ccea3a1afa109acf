using System.Text.RegularExpressions;

namespace SharpTune.Tests.Modeling;

/// <summary>
/// Every command loads models through <see cref="SharpTune.Modeling.ModelLoader"/>: a model object is built nowhere
/// else in src/, so no second loading path (and no second adapter-config reader) can grow back beside it.
/// </summary>
public sealed class OneModelLoaderTests
{
    private static readonly string Src = Path.Combine(TestPaths.RepoRoot, "src");

    /// <summary>file:line of each src line matching <paramref name="pattern"/> outside the allowed files (paths relative to src/).</summary>
    private static List<string> UsesOutside(string pattern, params string[] allowed)
    {
        var regex = new Regex(pattern);
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(Src, file).Replace('\\', '/');
            if (relative.Contains("/obj/") || relative.Contains("/bin/") || allowed.Contains(relative)) continue;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
                if (regex.IsMatch(lines[i])) found.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
        }
        return found;
    }

    [Fact]
    public void OnlyTheLoaderAndInitModelBuildAModel()
    {
        // init-model builds a model to fill with random weights: it creates one, it loads nothing.
        var builders = UsesOutside(@"new\s+CausalLM\s*\(", "SharpTune/Modeling/ModelLoader.cs", "SharpTune.Cli/Commands/InitModelCommand.cs");
        Assert.True(builders.Count == 0, "models built outside ModelLoader:\n" + string.Join("\n", builders));
    }

    [Fact]
    public void OnlySavedLoraAdapterReadsAdapterConfig()
    {
        var readers = UsesOutside(@"LoraSettings\.FromAdapterConfig\s*\(", "SharpTune/Peft/SavedLoraAdapter.cs");
        Assert.True(readers.Count == 0, "adapter_config.json read outside SavedLoraAdapter:\n" + string.Join("\n", readers));
    }

    [Fact]
    public void TheScanSeesTheLoaderItself()
    {
        // Guards the two tests above against passing vacuously (a wrong src path, a renamed pattern).
        Assert.Single(UsesOutside(@"new\s+CausalLM\s*\(", "SharpTune.Cli/Commands/InitModelCommand.cs"), l => l.StartsWith("SharpTune/Modeling/ModelLoader.cs:", StringComparison.Ordinal));
        Assert.Single(UsesOutside(@"LoraSettings\.FromAdapterConfig\s*\("), l => l.StartsWith("SharpTune/Peft/SavedLoraAdapter.cs:", StringComparison.Ordinal));
    }
}
