using SharpTune.Tokenization;
using SharpTune.Tokenization.Jinja;

namespace SharpTune.Tests.Tokenization;

public sealed class JinjaEngineTests
{
    private static string Render(string template, Dictionary<string, object?>? variables = null) =>
        new ChatTemplate(template).Render(variables ?? []);

    [Fact]
    public void SyntaxErrorsNameLineAndColumn()
    {
        var e = Assert.Throws<TemplateException>(() => new ChatTemplate("line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}"));
        Assert.Equal((3, 10), (e.Line, e.Column));
        Assert.StartsWith("chat template error at line 3, column 10: Unexpected token", e.Message);

        var unclosed = Assert.Throws<TemplateException>(() => new ChatTemplate("{% for m in messages %}\n{{ m }}"));
        Assert.Contains("missing {% endfor / else %}", unclosed.Message);
    }

    [Fact]
    public void RuntimeErrorsNameTheFailingExpression()
    {
        var e = Assert.Throws<TemplateException>(() => Render("ok\n  {{ 'a' ~ none }}"));
        Assert.Equal((2, 6), (e.Line, e.Column));
        Assert.Equal("Cannot perform operation on null values", e.Reason);

        var raised = Assert.Throws<TemplateException>(() => Render("{{ raise_exception('roles must alternate') }}"));
        Assert.True(raised.RaisedByTemplate);
        Assert.Equal("chat template raised an exception at line 1, column 4: roles must alternate", raised.Message);
    }

    [Fact]
    public void PythonJinjaFeaturesBeyondTheJsReference()
    {
        Assert.Equal("[1, 3, 5] [2, 4]", Render("{{ [1,2,3,4,5] | select('odd') | list }} {{ [1,2,3,4,5] | reject('odd') | list }}"));
        Assert.Equal("AB", Render("{{ ['a','b'] | map('upper') | join }}"));
        Assert.Equal("odd even odd ", Render("{% for i in range(3) %}{{ loop.cycle('odd', 'even') }} {% endfor %}"));
        Assert.Equal("true true", Render("{{ 9 is divisibleby(3) }} {{ 1 is equalto 1 }}"));
        Assert.Equal("a|xx", Render("{{ 'xxaxx'.strip('x') }}|{{ 'xxaxx'.split('a')[0] }}"));
        Assert.Equal("[c]", Render("{% for ch in 'c' %}[{{ ch }}]{% endfor %}"));
        Assert.Equal("1 3 6", Render("{{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ [1, 2, 3] | sum }}"));
    }

    [Fact]
    public void StrftimeNowUsesTheClock()
    {
        var clock = new FixedClock(new DateTimeOffset(2024, 7, 26, 9, 5, 0, TimeSpan.Zero));
        var template = new ChatTemplate("Today Date: {{ strftime_now('%d %b %Y') }} {{ strftime_now('%H:%M') }}", clock);
        Assert.Equal("Today Date: 26 Jul 2024 09:05", template.Render(new Dictionary<string, object?>()));
    }

    [Fact]
    public void GenerationMarkersAreRemovedLikeTransformersDoes()
    {
        // Expected strings produced by @huggingface/jinja.
        Assert.Equal("U:hi  A:yo", Render("U:hi {% generation %} A:yo{% endgeneration %}"));
        Assert.Equal("U:hiA:yo !", Render("U:hi {%- generation -%} A:yo {% endgeneration %}!"));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
