# Loads and resolves one recipe with Kameleon's own code, runs nothing, and prints the resolved
# plan as one JSON document in the shape of `cairn plan --json --commands`, so the two can be
# diffed. Usage:
#   ruby kameleon_plan.rb KAMELEON_SRC BUILD_PATH RECIPE [KEY:VALUE ...]
# Run it from the directory Kameleon would be run from (its workspace). KAMELEON_SRC is a source
# checkout of Kameleon (its lib/ is loaded from there); BUILD_PATH is Kameleon's --build-path.
src, build_path, recipe_path, *globals = ARGV
$LOAD_PATH.unshift File.join(File.expand_path(src), "lib")
require "json"
require "kameleon"

# Everything Kameleon says while loading goes to stderr: stdout carries the JSON only.
real_stdout = $stdout.dup
$stdout.reopen($stderr)

def context_of(key)
  key.to_s.sub(/\Aexec_/, "")
end

def dump(cmd)
  key = cmd.key
  value = cmd.value
  case key
  when "exec_in", "exec_out", "exec_local"
    { "kind" => "exec", "context" => context_of(key), "command" => value.to_s }
  when "pipe"
    from, to = value
    { "kind" => "pipe",
      "from" => { "context" => context_of(from.key), "command" => from.value.to_s },
      "to" => { "context" => context_of(to.key), "command" => to.value.to_s } }
  when "rescue", "test", "group"
    { "kind" => key, "commands" => value.map { |c| dump(c) } }
  when "breakpoint"
    { "kind" => "breakpoint", "message" => value }
  when "reload_context"
    { "kind" => "reload_context", "context" => value.to_s }
  else
    # Kameleon skips these at run time with "Unknown command".
    { "kind" => "unknown", "key" => key.to_s }
  end
end

begin
  cli_global = {}
  globals.each do |kv|
    k, v = kv.split(":", 2)
    cli_global[k] = v
  end
  Kameleon.env = Kameleon::Environment.new(build_path: build_path, global: cli_global)
  Kameleon.ui = Kameleon::UI::Shell.new
  Kameleon.ui.level = "error"
  recipe = Kameleon::Recipe.new(recipe_path)
  # What Engine.new does before resolving, for a dry run with checkpoints on.
  recipe.global["checkpointing_enabled"] = "true"
  recipe.global["persistent_cache"] = "false"
  recipe.resolve!
  microsteps = recipe.microsteps.zip(recipe.all_checkpoints).map do |m, c|
    { "slug" => c["step"], "commands" => m.commands.map { |cmd| dump(cmd) } }
  end
  out = { "recipe" => recipe_path, "microsteps" => microsteps }
  unless recipe.checkpoint.nil?
    driver = {}
    (recipe.checkpoint.keys - ["path"]).sort.each do |op|
      driver[op.to_s.chomp("?")] = recipe.checkpoint[op].map { |cmd| dump(cmd) }
    end
    out["driver"] = driver
  end
  real_stdout.puts JSON.pretty_generate(out)
rescue Exception => e
  real_stdout.puts JSON.pretty_generate({ "recipe" => recipe_path, "error" => "#{e.class}: #{e.message}" })
  exit 1
end
