global using HeteroBatch.Engine.Sessions;
global using HeteroBatch.Engine.Units.Backends;
