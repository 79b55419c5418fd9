using HeteroBatch.Engine.Models;

namespace HeteroBatch.Engine.Tests;

public class ModelZooTests
{
    [Theory]
    [InlineData("resnet-18", 11_689_512)]
    [InlineData("resnet-34", 21_797_672)]
    [InlineData("resnet-50", 25_557_032)]
    [InlineData("vgg-16", 138_357_544)]
    [InlineData("vgg-19", 143_667_240)]
    [InlineData("densenet-121", 7_978_856)]
    [InlineData("squeezenet_v1.0", 1_248_424)]
    [InlineData("squeezenet_v1.1", 1_235_496)]
    [InlineData("inception_v3", 23_834_568)]
    [InlineData("mobilenet", 4_231_976)]
    public void ParameterCountsMatchTheReferenceArchitectures(string name, long expected)
    {
        Assert.Equal(expected, ModelZoo.Find(name)!.Parameters);
    }
}
