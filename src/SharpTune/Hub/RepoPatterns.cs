using System.Text;
using System.Text.RegularExpressions;

namespace SharpTune.Hub;

/// <summary>
/// allow_patterns / ignore_patterns as huggingface_hub's filter_repo_objects applies them: Python fnmatch on the repo path
/// ('*' also crosses '/', '?' one character, [seq] / [!seq]), case-sensitive; a pattern ending in '/' means everything below it.
/// </summary>
public sealed class RepoPatterns(IReadOnlyList<string> include, IReadOnlyList<string> exclude)
{
    private readonly Regex[] allow = include.Select(Compile).ToArray();
    private readonly Regex[] ignore = exclude.Select(Compile).ToArray();

    public bool Matches(string path) =>
        (allow.Length == 0 || allow.Any(r => r.IsMatch(path))) && !ignore.Any(r => r.IsMatch(path));

    public static Regex Compile(string pattern)
    {
        if (pattern.EndsWith('/')) pattern += "*";
        var sb = new StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            switch (c)
            {
                case '*': sb.Append(".*"); break;
                case '?': sb.Append('.'); break;
                case '[':
                    int close = pattern.IndexOf(']', i + 2 < pattern.Length ? i + 2 : i + 1);
                    if (close < 0) { sb.Append(@"\["); break; }
                    string set = pattern[(i + 1)..close];
                    sb.Append('[').Append(set.StartsWith('!') ? "^" + set[1..].Replace("\\", @"\\") : set.Replace("\\", @"\\")).Append(']');
                    i = close;
                    break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
    }
}
