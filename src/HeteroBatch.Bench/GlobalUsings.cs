global using HeteroBatch.Engine;
global using HeteroBatch.Engine.Runtime;
global using HeteroBatch.Engine.Sessions;
global using HeteroBatch.Engine.Units.Backends;
