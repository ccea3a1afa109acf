using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Config;

namespace SharpTune.Jobs;

/// <summary>The --keys-file: a JSON object mapping each API key to its user, e.g. {"sk-alice-…": "alice", "sk-bob-…": "bob"}.</summary>
public static class JobKeys
{
    public static IReadOnlyDictionary<string, string> Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"--keys-file: {path} not found");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidInputException($"--keys-file: {path} is not valid JSON ({e.Message.Split('\n')[0]}); expected {{\"KEY\": \"USER\", ...}}"); }
        if (root is not JsonObject map || map.Count == 0) throw new InvalidInputException($"--keys-file: {path}: expected a non-empty JSON object {{\"KEY\": \"USER\", ...}}");
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in map)
        {
            // Keys are secrets: messages show only their position.
            int at = keys.Count + 1;
            if (key.Length < 8) throw new InvalidInputException($"--keys-file: {path}: key #{at} is shorter than 8 characters; expected a long random key");
            if (value is not JsonValue v || !v.TryGetValue(out string? user) || !JobRequest.IsSafeName(user))
                throw new InvalidInputException($"--keys-file: {path}: the user of key #{at} is not a valid user name; expected {JobRequest.NameRule}");
            keys[key] = user;
        }
        return keys;
    }
}
