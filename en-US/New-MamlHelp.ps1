<#
.SYNOPSIS
    Writes the cmdlets' MAML help (HeteroBatch.dll-Help.xml) from HeteroBatch.help.psd1 and the
    built module's own parameter metadata (names, types, sets, positions, pipeline binding).
.NOTES
    Run by build.ps1 in a child pwsh after publishing. Fails if a cmdlet or a parameter has no text.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Source,
    [Parameter(Mandatory)] [string] $Destination
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$help = Import-PowerShellDataFile $Source
# -WhatIf and -Confirm (the optional common parameters) are shown where a cmdlet has them; the others are not
$common = [System.Management.Automation.PSCmdlet]::CommonParameters + @('UseTransaction')
$shouldProcessText = @{
    WhatIf  = 'Shows what the command would change, without changing it.'
    Confirm = 'Asks before each change.'
}
$missing = [System.Collections.Generic.List[string]]::new()

$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
$w = [System.Xml.XmlWriter]::Create($Destination, $settings)
$maml = 'http://schemas.microsoft.com/maml/2004/10'
$cmd = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$dev = 'http://schemas.microsoft.com/maml/dev/2004/10'

function Para([string] $text) {
    foreach ($p in ($text -split "`n`n")) { $w.WriteElementString('para', $maml, $p.Trim()) }
}
function TypeName([type] $t) { if ($t -eq [System.Management.Automation.SwitchParameter]) { 'SwitchParameter' } else { $t.FullName } }

$w.WriteStartDocument()
$w.WriteStartElement('helpItems'); $w.WriteAttributeString('schema', 'maml')
foreach ($command in (Get-Command -Module HeteroBatch -CommandType Cmdlet | Sort-Object Name)) {
    $text = $help[$command.Name]
    if (-not $text) { $missing.Add("$($command.Name): no entry"); continue }
    $verb, $noun = $command.Name -split '-', 2
    $w.WriteStartElement('command', 'command', $cmd)
    $w.WriteAttributeString('xmlns', 'maml', $null, $maml)
    $w.WriteAttributeString('xmlns', 'dev', $null, $dev)
    $w.WriteStartElement('details', $cmd)
    $w.WriteElementString('name', $cmd, $command.Name)
    $w.WriteStartElement('description', $maml); Para $text.Synopsis; $w.WriteEndElement()
    $w.WriteElementString('verb', $cmd, $verb); $w.WriteElementString('noun', $cmd, $noun)
    $w.WriteEndElement()
    $w.WriteStartElement('description', $maml); Para $text.Description; $w.WriteEndElement()

    $params = $command.Parameters.Values | Where-Object { $_.Name -notin $common }
    $w.WriteStartElement('syntax', $cmd)
    foreach ($set in $command.ParameterSets) {
        $w.WriteStartElement('syntaxItem', $cmd)
        $w.WriteElementString('name', $maml, $command.Name)
        foreach ($p in ($set.Parameters | Where-Object { $_.Name -notin $common } | Sort-Object { if ($_.Position -ge 0) { $_.Position } else { 1000 } })) {
            $w.WriteStartElement('parameter', $cmd)
            $w.WriteAttributeString('required', "$($p.IsMandatory)".ToLower())
            $w.WriteAttributeString('position', $(if ($p.Position -ge 0) { "$($p.Position + 1)" } else { 'named' }))
            $w.WriteElementString('name', $maml, $p.Name)
            if ($p.ParameterType -ne [System.Management.Automation.SwitchParameter]) {
                $w.WriteStartElement('parameterValue', $cmd); $w.WriteAttributeString('required', 'true'); $w.WriteString((TypeName $p.ParameterType)); $w.WriteEndElement()
            }
            $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('parameters', $cmd)
    foreach ($p in $params) {
        $desc = $text.Parameters[$p.Name]
        if (-not $desc) { $desc = $shouldProcessText[$p.Name] }
        if (-not $desc) { $missing.Add("$($command.Name) -$($p.Name): no description"); $desc = '' }
        $attr = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }
        $pipeline = @(if ($attr | Where-Object ValueFromPipeline) { 'ByValue' }; if ($attr | Where-Object ValueFromPipelineByPropertyName) { 'ByPropertyName' })
        $position = ($attr | Where-Object { $_.Position -ge 0 } | Select-Object -First 1).Position
        $w.WriteStartElement('parameter', $cmd)
        $w.WriteAttributeString('required', "$([bool]($attr | Where-Object Mandatory))".ToLower())
        $w.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
        $w.WriteAttributeString('position', $(if ($null -ne $position) { "$($position + 1)" } else { 'named' }))
        $w.WriteAttributeString('globbing', "$([bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }))".ToLower())
        $w.WriteElementString('name', $maml, $p.Name)
        $w.WriteStartElement('description', $maml); Para $desc; $w.WriteEndElement()
        $w.WriteStartElement('parameterValue', $cmd); $w.WriteAttributeString('required', 'true'); $w.WriteString((TypeName $p.ParameterType)); $w.WriteEndElement()
        $w.WriteStartElement('type', $dev); $w.WriteElementString('name', $maml, (TypeName $p.ParameterType)); $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    # what the command takes from the pipeline: the types of the parameters that bind from it
    $w.WriteStartElement('inputTypes', $cmd)
    foreach ($p in $params) {
        $attr = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }
        $how = @(if ($attr | Where-Object ValueFromPipeline) { 'by value' }; if ($attr | Where-Object ValueFromPipelineByPropertyName) { 'by property name' })
        if (-not $how) { continue }
        $w.WriteStartElement('inputType', $cmd)
        $w.WriteStartElement('type', $dev); $w.WriteElementString('name', $maml, (TypeName $p.ParameterType)); $w.WriteEndElement()
        $w.WriteStartElement('description', $maml); Para "-$($p.Name), $($how -join ' and ')."; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('returnValues', $cmd)
    foreach ($t in $command.OutputType) {
        $w.WriteStartElement('returnValue', $cmd)
        $w.WriteStartElement('type', $dev); $w.WriteElementString('name', $maml, $t.Name); $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('examples', $cmd)
    $i = 0
    foreach ($ex in $text.Examples) {
        $i++
        $w.WriteStartElement('example', $cmd)
        $w.WriteElementString('title', $maml, "-------------------------- Example $i --------------------------")
        $w.WriteElementString('code', $dev, $ex.Code)
        $w.WriteStartElement('remarks', $dev); Para $ex.Remarks; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    if ($i -eq 0) { $missing.Add("$($command.Name): no example") }
    $w.WriteEndElement()

    $w.WriteStartElement('relatedLinks', $maml)
    $w.WriteStartElement('navigationLink', $maml); $w.WriteElementString('linkText', $maml, 'about_HeteroBatch'); $w.WriteEndElement()
    $w.WriteEndElement()
    $w.WriteEndElement()
}
$w.WriteEndElement()
$w.WriteEndDocument()
$w.Close()
if ($missing.Count) { throw "Help is incomplete:`n  $($missing -join "`n  ")" }
