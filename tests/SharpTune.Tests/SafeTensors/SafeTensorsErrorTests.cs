using System.Buffers.Binary;
using System.Text;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Tests.SafeTensors;

public sealed class SafeTensorsErrorTests
{
    private readonly string _dir = TestPaths.TempDir();

    private string WriteRaw(string header, int dataBytes, ulong? declaredHeaderLength = null, string name = "bad.safetensors")
    {
        var path = Path.Combine(_dir, name);
        var headerBytes = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + headerBytes.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)headerBytes.Length);
        headerBytes.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string OpenError(string path) =>
        Assert.Throws<InvalidInputException>(() => SafeTensorsCheckpoint.Open(path).Dispose()).Message;

    [Fact]
    public void File_shorter_than_the_length_prefix()
    {
        var path = Path.Combine(_dir, "short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        Assert.Equal($"{path}: file is 5 bytes, shorter than the 8-byte header length that starts a safetensors file", OpenError(path));
    }

    [Fact]
    public void Header_length_larger_than_the_file()
    {
        var path = WriteRaw("{}", 0, declaredHeaderLength: 1000);
        Assert.Equal($"{path}: header length 1000 is larger than the 2 bytes that follow it; the file is truncated or not a safetensors file", OpenError(path));
    }

    [Fact]
    public void Header_that_is_not_json()
    {
        var path = WriteRaw("{\"a\": {\"dtype\": \"F32\",", 0);
        Assert.StartsWith($"{path}: header is not valid JSON (", OpenError(path));
        Assert.DoesNotContain('\n', OpenError(path));
    }

    [Fact]
    public void Header_that_is_not_utf8()
    {
        var path = Path.Combine(_dir, "latin1.safetensors");
        File.WriteAllBytes(path, [4, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'"', 0xFF, (byte)'"']);
        Assert.StartsWith($"{path}: header is not valid JSON (", OpenError(path));
    }

    [Fact]
    public void Header_that_is_not_an_object()
    {
        var path = WriteRaw("[1, 2]", 0);
        Assert.Equal($"{path}: header is a JSON array, expected an object of tensor names", OpenError(path));
    }

    [Fact]
    public void Unknown_dtype()
    {
        var path = WriteRaw("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        Assert.Equal($"{path}: tensor 'w' has dtype 'F8_E4M3', which is not supported (allowed: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)", OpenError(path));
    }

    [Fact]
    public void Overlapping_data_offsets()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        Assert.Equal($"{path}: tensor 'b' has data_offsets [4, 12] that overlap the previous tensor or run backwards (expected it to begin at 8)", OpenError(path));
    }

    [Fact]
    public void Data_offsets_leaving_a_gap()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
        Assert.Equal($"{path}: tensor 'a' has data_offsets [4, 8] that leave a gap after the previous tensor (expected it to begin at 0)", OpenError(path));
    }

    [Fact]
    public void Data_offsets_not_matching_shape_and_dtype()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8);
        Assert.Equal($"{path}: tensor 'a' has data_offsets [0, 8] spanning 8 bytes, but shape [2, 3] of BF16 needs 12 bytes", OpenError(path));
    }

    [Fact]
    public void Data_offsets_beyond_the_file()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,32]}}", 10);
        Assert.Equal($"{path}: tensor 'a' has data_offsets [0, 32] beyond the 10 data bytes in the file; the file is truncated", OpenError(path));
    }

    [Fact]
    public void Truncated_copy_of_a_real_file()
    {
        var source = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama", "model.safetensors");
        var path = Path.Combine(_dir, "truncated.safetensors");
        var bytes = File.ReadAllBytes(source);
        File.WriteAllBytes(path, bytes[..^100]);
        Assert.Equal($"{path}: tensor 'model.norm.weight' has data_offsets [427008, 427264] beyond the 427164 data bytes in the file; the file is truncated", OpenError(path));
    }

    [Fact]
    public void Bytes_after_the_last_tensor()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6);
        Assert.Equal($"{path}: the header accounts for 4 data bytes but the file holds 6 after the header; the file is corrupt", OpenError(path));
    }

    [Fact]
    public void Metadata_with_a_non_string_value()
    {
        var path = WriteRaw("{\"__metadata__\":{\"step\":3}}", 0);
        Assert.Equal($"{path}: __metadata__ key 'step' is a JSON number, only strings are allowed", OpenError(path));
    }

    [Fact]
    public void Negative_shape()
    {
        var path = WriteRaw("{\"a\":{\"dtype\":\"I8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0);
        Assert.Equal($"{path}: tensor 'a' has shape entry -1, expected a non-negative integer", OpenError(path));
    }

    [Fact]
    public void Missing_tensor_names_file_and_tensor()
    {
        var path = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama", "model.safetensors");
        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        Assert.False(checkpoint.Contains("lm_head.bias"));
        var error = Assert.Throws<InvalidInputException>(() => checkpoint.Info("lm_head.bias"));
        Assert.Equal($"{path}: no tensor named 'lm_head.bias' (the checkpoint holds 21 tensors)", error.Message);
        var hinted = Assert.Throws<InvalidInputException>(() => checkpoint.Load("base_model.model.model.norm.weight"));
        Assert.Equal($"{path}: no tensor named 'base_model.model.model.norm.weight' (the checkpoint holds 21 tensors; a similar one is 'model.norm.weight')", hinted.Message);
    }

    [Fact]
    public void Missing_tensor_in_a_folder_names_the_file_and_in_shards_names_the_index()
    {
        var folder = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama");
        using (var checkpoint = SafeTensorsCheckpoint.Open(folder))
        {
            var error = Assert.Throws<InvalidInputException>(() => checkpoint.Info("lm_head.bias"));
            Assert.Equal($"{Path.Combine(folder, "model.safetensors")}: no tensor named 'lm_head.bias' (the checkpoint holds 21 tensors)", error.Message);
        }
        using var a = tensor(new float[] { 1 });
        using var b = tensor(new float[] { 2 });
        SafeTensorsWriter.SaveSharded(_dir, [new("a", a), new("b", b)], maxShardBytes: 4);
        using var sharded = SafeTensorsCheckpoint.Open(_dir);
        var missing = Assert.Throws<InvalidInputException>(() => sharded.Load("c"));
        Assert.Equal($"{Path.Combine(_dir, "model.safetensors.index.json")}: no tensor named 'c' (the checkpoint holds 2 tensors)", missing.Message);
    }

    [Fact]
    public void Shape_mismatch()
    {
        var path = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama", "model.safetensors");
        using var checkpoint = SafeTensorsCheckpoint.Open(path);
        var error = Assert.Throws<InvalidInputException>(() => checkpoint.Load("model.layers.0.self_attn.k_proj.weight", [64, 64]));
        Assert.Equal($"{path}: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 64], the model expects [64, 64]", error.Message);
    }

    [Fact]
    public void Index_pointing_at_a_missing_shard()
    {
        using var a = tensor(new float[] { 1 });
        SafeTensorsWriter.Save(Path.Combine(_dir, "model-00001-of-00002.safetensors"), [new("a", a)]);
        var index = Path.Combine(_dir, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"metadata\": {\"total_size\": 8}, \"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}}");
        Assert.Equal($"{index}: tensor 'b' is mapped to shard 'model-00002-of-00002.safetensors', which does not exist in {_dir}", OpenError(_dir));
    }

    [Fact]
    public void Index_mapping_a_tensor_its_shard_lacks()
    {
        using var a = tensor(new float[] { 1 });
        SafeTensorsWriter.Save(Path.Combine(_dir, "model-00001-of-00001.safetensors"), [new("a", a)]);
        var index = Path.Combine(_dir, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\", \"c\": \"model-00001-of-00001.safetensors\"}}");
        Assert.Equal($"{index}: tensor 'c' is mapped to shard 'model-00001-of-00001.safetensors', which has no such tensor", OpenError(index));
    }

    [Fact]
    public void Index_without_a_weight_map()
    {
        var index = Path.Combine(_dir, "model.safetensors.index.json");
        File.WriteAllText(index, "{\"metadata\": {}}");
        Assert.Equal($"{index}: no \"weight_map\" object (expected {{\"metadata\": {{...}}, \"weight_map\": {{tensor: shard file}}}})", OpenError(_dir));
    }

    [Fact]
    public void Folder_without_a_checkpoint()
    {
        Assert.Equal($"{_dir}: folder holds none of model.safetensors, model.safetensors.index.json, adapter_model.safetensors", OpenError(_dir));
    }

    [Fact]
    public void Path_that_does_not_exist()
    {
        var path = Path.Combine(_dir, "nope");
        Assert.Equal($"{path}: no such file or folder (expected a .safetensors file or a folder holding model.safetensors or model.safetensors.index.json)", OpenError(path));
    }

    [Fact]
    public void Adapter_folder_opens_adapter_model()
    {
        using var loraA = tensor(new float[] { 0.25f, 0.5f }).reshape(1, 2);
        SafeTensorsWriter.Save(Path.Combine(_dir, "adapter_model.safetensors"), [new("base_model.model.q.lora_A.weight", loraA)], new Dictionary<string, string> { ["format"] = "pt" });
        using var checkpoint = SafeTensorsCheckpoint.Open(_dir);
        using var loaded = checkpoint.Load("base_model.model.q.lora_A.weight", [1, 2]);
        Assert.Equal(new[] { 0.25f, 0.5f }, loaded.data<float>().ToArray());
    }

    [Fact]
    public void Writer_rejects_reserved_and_duplicate_names()
    {
        using var a = tensor(new float[] { 1 });
        var path = Path.Combine(_dir, "w.safetensors");
        var reserved = Assert.Throws<InvalidInputException>(() => SafeTensorsWriter.Save(path, [new("__metadata__", a)]));
        Assert.Equal($"{path}: '__metadata__' is reserved and cannot name a tensor", reserved.Message);
        var twice = Assert.Throws<InvalidInputException>(() => SafeTensorsWriter.Save(path, [new("a", a), new("a", a)]));
        Assert.Equal($"{path}: tensor 'a' is given twice", twice.Message);
        Assert.False(File.Exists(path));
    }
}
