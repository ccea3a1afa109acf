using System.Text.RegularExpressions;

namespace SharpTune.Tests.Architecture;

/// <summary>
/// The library's folders stand on floors (docs/architecture.md): a folder may use its own folder and folders on floors
/// below it, never one beside or above it. Every `using SharpTune.X` and every qualified `SharpTune.X.Y` / `X.Y` reference
/// in src/SharpTune is checked; an upward or sideways use fails with its file:line.
/// </summary>
public sealed partial class LayeringTests
{
    /// <summary>Top to bottom. The root namespace (the exceptions every folder throws) and Files are the ground floor.</summary>
    internal static readonly string[][] Floors =
    [
        ["Jobs", "Planning"],                           // run training processes / forecast what training allocates
        ["Training", "Serving", "Export"],              // the recipes, the HTTP server, GGUF export
        ["Distributed", "Peft", "Inference"],
        ["Data", "Modeling"],
        ["Config"],                                     // the run's settings (names the built-in chat templates)
        ["Tokenization", "SafeTensors", "Native", "Hub"],
        ["Files"],                                      // atomic file and folder writes
    ];

    /// <summary>
    /// Uses that break the floors today and are being removed by another change; each names who removes it. Keep this
    /// list empty once they have landed.
    /// </summary>
    private static readonly (string File, string Target)[] TemporaryExemptions =
    [];

    private static readonly string Source = Path.Combine(TestPaths.RepoRoot, "src", "SharpTune");

    [Fact]
    public void NoFolderUsesAFolderOnItsOwnFloorOrAbove()
    {
        var violations = Violations(Source).Where(v => !TemporaryExemptions.Contains((v.File, v.Target))).ToList();
        Assert.True(violations.Count == 0, "uses that run up or across the floors (docs/architecture.md):\n" +
            string.Join("\n", violations.Select(v => $"src/SharpTune/{v.File}:{v.Line}: {v.Folder} uses {v.Target} ({v.Text})")));
    }

    [Fact]
    public void EveryFolderOfTheLibraryHasAFloor()
    {
        var folders = Directory.GetDirectories(Source).Select(Path.GetFileName).Where(n => n is not ("bin" or "obj")).Order().ToArray();
        Assert.Equal(folders, Floors.SelectMany(f => f).Order().ToArray());
    }

    [Fact]
    public void TheTemporaryExemptionsStillExist()
    {
        // An exemption whose use is gone must be deleted, so the list cannot hide a new use of the same pair.
        var found = Violations(Source).Select(v => (v.File, v.Target)).ToHashSet();
        foreach (var exemption in TemporaryExemptions)
            Assert.True(found.Contains(exemption), $"{exemption.File} no longer uses {exemption.Target}: remove its exemption from {nameof(LayeringTests)}");
    }

    [Fact]
    public void AnUpwardUsingAndAQualifiedUpwardNameAreBothCaught()
    {
        var root = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(root, "Modeling"));
        Directory.CreateDirectory(Path.Combine(root, "Hub"));
        File.WriteAllText(Path.Combine(root, "Modeling", "Up.cs"),
            "using SharpTune.Config;\nusing SharpTune.Training;\nnamespace SharpTune.Modeling;\n// Training.Trainer in a comment is no use\n" +
            "class Up { string s = \"Serving.OpenAiServer\"; object o = SharpTune.Jobs.JobQueue.X; }\n");
        File.WriteAllText(Path.Combine(root, "Hub", "Side.cs"), "namespace SharpTune.Hub;\nclass Side { object o = Native.CpuFeatures.Avx512; object p = Hub.HubClient.X; }\n");
        var found = Violations(root).Select(v => $"{v.File}:{v.Line} {v.Target}").ToArray();
        Assert.Equal(["Hub/Side.cs:2 Native", "Modeling/Up.cs:2 Training", "Modeling/Up.cs:5 Jobs"], found);
    }

    internal sealed record Use(string File, int Line, string Folder, string Target, string Text);

    internal static IEnumerable<Use> Violations(string sourceRoot)
    {
        var floorOf = Floors.SelectMany((folders, floor) => folders.Select(f => (f, floor))).ToDictionary(p => p.f, p => p.floor);
        var names = string.Join("|", floorOf.Keys.Select(Regex.Escape));
        var usingPattern = new Regex(@"^\s*(?:global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?SharpTune\.(\w+)");
        var qualifiedPattern = new Regex(@"(?<![\w.])(?:global::)?(?:SharpTune\.)?(" + names + @")\.[A-Z]\w*");
        foreach (var file in Directory.EnumerateFiles(sourceRoot, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(sourceRoot, file).Replace('\\', '/');
            if (relative.StartsWith("obj/", StringComparison.Ordinal) || relative.StartsWith("bin/", StringComparison.Ordinal)) continue;
            int slash = relative.IndexOf('/');
            if (slash < 0) continue; // root files (namespace SharpTune) stand on the ground floor and use nothing of SharpTune
            var folder = relative[..slash];
            // Files outside any floor are caught by EveryFolderOfTheLibraryHasAFloor; here they count as the top floor.
            int own = floorOf.GetValueOrDefault(folder, -1);
            int lineNumber = 0;
            foreach (var raw in File.ReadLines(file))
            {
                lineNumber++;
                var line = Code(raw);
                var targets = new List<string>();
                if (usingPattern.Match(line) is { Success: true } u) targets.Add(u.Groups[1].Value);
                else targets.AddRange(qualifiedPattern.Matches(line).Select(m => m.Groups[1].Value));
                foreach (var target in targets.Distinct())
                    if (target != folder && floorOf.TryGetValue(target, out int floor) && floor <= own)
                        yield return new Use(relative, lineNumber, folder, target, line.Trim());
            }
        }
    }

    /// <summary>The line without its comment and string literals (a name in prose or in a message is no use).</summary>
    private static string Code(string line)
    {
        var withoutStrings = StringLiteral().Replace(line, "\"\"");
        int comment = withoutStrings.IndexOf("//", StringComparison.Ordinal);
        return comment < 0 ? withoutStrings : withoutStrings[..comment];
    }

    [GeneratedRegex(@"@?\$?""(?:[^""\\]|\\.)*""")]
    private static partial Regex StringLiteral();
}
